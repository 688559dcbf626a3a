"""One architecture per file; ``REGISTRY`` maps a name a page can show to its builder."""
from core.models.mnist_cnn import basic_cnn, conv_layer_cnn, densenet_cnn, resnet_cnn

REGISTRY = {
    "basic_cnn": basic_cnn,
    "conv_layer_cnn": conv_layer_cnn,
    "resnet_cnn": resnet_cnn,
    "densenet_cnn": densenet_cnn,
}


def build(name: str, **kwargs):
    """Build a registered model by name."""
    if name not in REGISTRY:
        raise ValueError(f"Unknown model {name!r}; choose one of {', '.join(REGISTRY)}.")
    return REGISTRY[name](**kwargs)
