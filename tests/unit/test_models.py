"""The Lesson 7 CNNs: parameter counts, shapes layer by layer, and the two kinds of block."""
from __future__ import annotations

import pytest
import torch

from core.models import REGISTRY, build
from core.models.mnist_cnn import DenseBlock, ResBlock
from core.summary import layer_table


def n_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_basic_cnn_has_the_lessons_12126_parameters():
    assert n_parameters(build("basic_cnn")) == 12_126


def test_basic_cnn_shapes_layer_by_layer():
    table = layer_table(build("basic_cnn"))
    convs = table[table["layer"].str.endswith("Conv2d")]
    assert list(convs["output shape"]) == ["8×14×14", "16×7×7", "32×4×4", "16×2×2", "10×1×1"]
    # BatchNorm after every conv, the last one too (that is where 12,126 comes from)
    assert (table["layer"].str.endswith("BatchNorm2d")).sum() == 5
    assert table["output shape"].iloc[-1] == "10"
    assert table["layer"].iloc[-1].endswith("Flatten")


@pytest.mark.parametrize("name", list(REGISTRY))
def test_layer_table_parameters_add_up_to_the_model(name):
    model = build(name)
    table = layer_table(model)
    assert list(table.columns) == ["layer", "output shape", "parameters"]
    assert len(table) > 5
    assert table["parameters"].sum() == n_parameters(model)
    assert table["output shape"].iloc[-1] == "10"


@pytest.mark.parametrize("name", list(REGISTRY))
def test_layer_table_leaves_the_model_as_it_was(name):
    model = build(name)
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    layer_table(model)
    assert model.training
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # eval mode: no BN stats updated
    assert not model._forward_hooks and all(not m._forward_hooks for m in model.modules())


@pytest.mark.parametrize("name", list(REGISTRY))
def test_every_model_maps_a_batch_of_digits_to_ten_scores(name):
    model = build(name)
    images = torch.randn(5, 1, 28, 28)
    logits = model(images)
    assert logits.shape == (5, 10)
    # and it can be trained: the backward pass reaches the first layer
    logits.logsumexp(dim=1).sum().backward()
    first = next(model.parameters())
    assert first.grad is not None and first.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        assert model(images[:1]).shape == (1, 10)


def test_the_four_lesson_architectures_are_registered():
    assert set(REGISTRY) == {"basic_cnn", "conv_layer_cnn", "resnet_cnn", "densenet_cnn"}
    sizes = {name: n_parameters(build(name)) for name in REGISTRY}
    assert sizes["basic_cnn"] == 12_126
    assert sizes["conv_layer_cnn"] < sizes["basic_cnn"]  # no conv bias: BN's beta replaces it
    assert sizes["basic_cnn"] < sizes["resnet_cnn"] < sizes["densenet_cnn"]


def test_resblock_keeps_channels_and_size():
    block = ResBlock(16)
    x = torch.randn(3, 16, 7, 7)
    assert block(x).shape == x.shape


def test_resblock_can_learn_to_do_nothing():
    block = ResBlock(8).eval()
    last_bn = block.body[-1][-1]
    assert isinstance(last_bn, torch.nn.BatchNorm2d)
    torch.nn.init.zeros_(last_bn.weight)
    torch.nn.init.zeros_(last_bn.bias)
    x = torch.randn(2, 8, 5, 5)
    with torch.no_grad():
        assert torch.equal(block(x), x)


def test_denseblock_doubles_channels_and_keeps_its_input():
    block = DenseBlock(16)
    x = torch.randn(3, 16, 7, 7)
    out = block(x)
    assert out.shape == (3, 32, 7, 7)
    assert torch.equal(out[:, :16], x)


def test_build_unknown_model_raises_value_error_naming_the_choices():
    with pytest.raises(ValueError, match="basic_cnn"):
        build("lenet")
