"""One architecture per file; ``REGISTRY`` maps a name a page can show to its builder."""
from core.models.human_numbers_rnn import model0, model1, model2, model3
from core.models.mnist_cnn import basic_cnn, conv_layer_cnn, densenet_cnn, resnet_cnn
from core.models.torch_rnn import model4, model5

REGISTRY = {
    "basic_cnn": basic_cnn,
    "conv_layer_cnn": conv_layer_cnn,
    "resnet_cnn": resnet_cnn,
    "densenet_cnn": densenet_cnn,
}

# Lesson 7's language models of human numbers, each reading (seq_len, bs) word ids.
LANGUAGE_MODELS = {
    "model0": model0,
    "model1": model1,
    "model2": model2,
    "model3": model3,
    "model4": model4,
    "model5": model5,
}


def build(name: str, **kwargs):
    """Build a registered model by name."""
    if name not in REGISTRY:
        raise ValueError(f"Unknown model {name!r}; choose one of {', '.join(REGISTRY)}.")
    return REGISTRY[name](**kwargs)
