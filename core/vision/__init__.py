"""Pictures through pretrained networks: backbones and their hooks, images, the style lab's losses."""
