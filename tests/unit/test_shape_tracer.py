"""The shape tracer: the lessons' numbers come out of its presets, its formulas agree with torch on
random settings, and every bad table is a UserError that names the row, refused before allocating."""
from __future__ import annotations

import random
import time

import pytest
import torch
from torch import nn

from core.errors import UserError
from core.i18n import t
from core.models.inception import InceptionResNetB
from core.shape_tracer import KINDS, PRESETS, inception_comparison, layer_code, parse_pair, parse_shape, trace


def preset_table(name: str):
    shape, layers = PRESETS[name]
    return trace(layers, parse_shape(shape))


def row_error(layers: list[dict], shape: tuple[int, ...]) -> UserError:
    with pytest.raises(UserError) as caught:
        trace(layers, shape)
    assert caught.value.key.startswith("tracer."), caught.value.key
    return caught.value


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_agrees_with_torch(name):
    table = preset_table(name)
    assert table["agrees"].all(), table.to_string()
    assert set(table["kind"]) <= set(KINDS)


def test_mnist_cnn_is_the_lesson_net():
    table = preset_table("mnist_cnn")
    assert table["params"].sum() == 12_126
    convs = table[table["kind"] == "conv"]
    assert [shape.split("×")[1] for shape in convs["shape"]] == ["14", "7", "4", "2", "1"]
    assert table["shape"].iloc[-1] == "10"


def test_dcgans_reach_their_image_and_their_verdict():
    assert preset_table("dcgan_g")["shape"].iloc[-1] == "3×64×64"
    assert preset_table("dcgan_d")["shape"].iloc[-1] == "1×1×1"


def test_factoring_a_7x7_keeps_14_of_49_weights():
    seven, factored, bottleneck = (preset_table(name)["params"].sum()
                                   for name in ("inception_7x7", "inception_factored", "inception_bottleneck"))
    assert seven / factored == 49 / 14
    assert bottleneck < factored
    comparison = inception_comparison().set_index("preset")
    assert comparison.loc["inception_7x7", "params"] == 192 * 192 * 49
    assert comparison.loc["inception_7x7", "macs"] / comparison.loc["inception_factored", "macs"] == 49 / 14


def test_resnet_b_rows_are_the_real_block_less_its_1x1_branch():
    one_by_one_branch = 1088 * 192 + 2 * 192  # conv without bias + BatchNorm
    real = sum(p.numel() for p in InceptionResNetB().parameters())
    assert preset_table("inception_resnet_b")["params"].sum() + one_by_one_branch == real


def test_inception_preset_traces_quickly():
    preset_table("inception_7x7")  # warm-up: the first conv of a process sets torch up
    start = time.perf_counter()
    preset_table("inception_resnet_b")
    assert time.perf_counter() - start < 0.5  # well under 0.2 s alone; slack for a shared CPU


def test_conv_macs_are_a_hand_count():
    table = trace([{"kind": "conv", "out": 2, "kernel": "3", "bias": False}], (1, 5, 5))
    # 2 channels × 3×3 outputs, each 1 input channel × 3×3 kernel
    assert table["shape"].iloc[0] == "2×3×3"
    assert table["macs"].iloc[0] == 2 * 3 * 3 * 1 * 9 == 162
    assert table["params"].iloc[0] == 18


def test_conv_transpose_macs_count_every_input_cell_times_the_kernel():
    table = trace([{"kind": "conv_transpose", "out": 3, "kernel": "4", "stride": 2, "padding": "1"}], (2, 5, 5))
    assert table["shape"].iloc[0] == "3×10×10"
    assert table["macs"].iloc[0] == 5 * 5 * 2 * 3 * 16
    assert table["params"].iloc[0] == 2 * 3 * 16 + 3


def test_editor_values_are_coerced():
    rows = [{"kind": "conv", "out": 8.0, "kernel": 3.0, "stride": "2", "padding": float("nan"), "bias": None},
            {"kind": "maxpool", "out": None, "kernel": "2", "stride": None, "padding": None}]
    table = trace(rows, (1, 28, 28))
    assert list(table["shape"]) == ["8×13×13", "8×6×6"]
    assert table["params"].iloc[0] == 8 * 9 + 8  # an empty bias is torch's default, True


def test_pixel_shuffle_needs_channels_divisible_by_its_square():
    error = row_error([{"kind": "conv1x1", "out": 6}, {"kind": "pixel_shuffle", "scale": 2}], (3, 8, 8))
    assert error.params["row"] == 2 and error.params["kind"] == "pixel_shuffle"
    assert "Row 2" in str(error) and "4" in str(error)


def test_linear_after_a_conv_asks_for_a_flatten():
    error = row_error([{"kind": "conv", "out": 4, "kernel": "3"}, {"kind": "linear", "out": 10}], (1, 8, 8))
    assert error.key == "tracer.needs_flat" and error.params["row"] == 2
    assert "flatten" in str(error)


def test_conv_on_flat_features_is_refused():
    error = row_error([{"kind": "conv", "out": 4, "kernel": "3"}], (512,))
    assert error.key == "tracer.needs_image" and "Row 1 (conv)" in str(error)


def test_a_kernel_wider_than_the_padded_input_names_the_row_and_axis():
    error = row_error([{"kind": "conv1x1", "out": 4}, {"kind": "conv", "out": 4, "kernel": "1x7"}], (1, 5, 5))
    assert error.key == "tracer.row_arith" and error.params["detail_key"] == "arith.conv_too_small"
    assert str(error).startswith("Row 2 (conv), along W:")
    chinese = t(error.key, "zh", **error.params)  # the wrapped formula's message is translated too
    assert chinese.startswith("第 2 行") and "The kernel" not in chinese and "卷积核" in chinese


def test_an_enormous_input_is_refused_at_once():
    start = time.perf_counter()
    with pytest.raises(UserError) as caught:
        trace([{"kind": "relu"}], parse_shape("3x100000x100000"))
    assert caught.value.key == "tracer.input_too_big"
    assert time.perf_counter() - start < 0.1


@pytest.mark.parametrize("layers, shape, key", [
    ([{"kind": "upsample", "scale": 1000}], (3, 64, 64), "tracer.too_big"),  # 3×64000×64000
    ([{"kind": "flatten"}, {"kind": "linear", "out": 100_000}], (3, 64, 64), "tracer.too_many_params"),  # 1.2e9
    ([{"kind": "conv", "out": 512, "kernel": "7", "padding": "3"}], (512, 64, 64), "tracer.too_much_work"),  # 5e10
])
def test_enormous_layers_are_refused_before_allocating(layers, shape, key):
    start = time.perf_counter()
    assert row_error(layers, shape).key == key
    assert time.perf_counter() - start < 0.1


def test_too_many_rows_are_refused():
    assert row_error([{"kind": "relu"}] * 41, (1, 4, 4)).key == "tracer.too_many_rows"


@pytest.mark.parametrize("row, key", [
    ({"kind": "banana"}, "tracer.unknown_kind"),
    ({"kind": None}, "tracer.unknown_kind"),
    ({"kind": "conv", "out": 4, "kernel": "x"}, "tracer.row_bad_pair"),
    ({"kind": "conv", "out": 4, "kernel": None}, "tracer.row_bad_pair"),
    ({"kind": "conv", "out": 4, "kernel": -3}, "tracer.row_bad_pair"),
    ({"kind": "conv", "out": None, "kernel": "3"}, "tracer.needs_out"),
    ({"kind": "conv", "out": 0, "kernel": "3"}, "tracer.needs_out"),
    ({"kind": "conv", "out": "lots", "kernel": "3"}, "tracer.bad_number"),
    ({"kind": "conv", "out": 4, "kernel": "3", "stride": 1.5}, "tracer.bad_number"),
    ({"kind": "conv", "out": 4, "kernel": "3", "stride": 0}, "tracer.row_arith"),
    ({"kind": "conv", "out": 4, "kernel": "3", "bias": "maybe"}, "tracer.bad_bias"),
    ({"kind": "upsample", "scale": 0}, "tracer.below_one"),
    ({"kind": "concat", "out": None}, "tracer.needs_out"),
    ({"kind": "maxpool", "kernel": "2", "padding": "2"}, "tracer.row_arith"),
    ({"kind": "conv_transpose", "out": 4, "kernel": "3", "output_padding": 1}, "tracer.row_arith"),
])
def test_junk_rows_are_user_errors_naming_the_row(row, key):
    error = row_error([{"kind": "relu"}, row], (1, 8, 8))
    assert error.key == key
    assert error.params["row"] == 2 and "kind" in error.params
    assert str(error).startswith("Row 2")


@pytest.mark.parametrize("text, pair", [("3", (3, 3)), ("1x7", (1, 7)), ("1×7", (1, 7)), (" 3 x 3 ", (3, 3)),
                                        ("0x3", (0, 3))])
def test_parse_pair_accepts(text, pair):
    assert parse_pair(text) == pair


@pytest.mark.parametrize("text", ["", "x", "3x", "1x7x7", "-1", "2.5", "three", "3 3"])
def test_parse_pair_rejects(text):
    with pytest.raises(UserError) as caught:
        parse_pair(text)
    assert caught.value.key == "tracer.bad_pair" and "1x7" in str(caught.value)


@pytest.mark.parametrize("text, shape", [("1x28x28", (1, 28, 28)), ("100x1x1", (100, 1, 1)), ("512", (512,)),
                                         (" 3 × 64 × 64 ", (3, 64, 64))])
def test_parse_shape_accepts(text, shape):
    assert parse_shape(text) == shape


@pytest.mark.parametrize("text", ["", "1x28", "0x28x28", "1x28x28x1", "1x-2x2", "axbxc", "1.5x2x2"])
def test_parse_shape_rejects(text):
    with pytest.raises(UserError) as caught:
        parse_shape(text)
    assert caught.value.key == "tracer.bad_shape"


def test_layer_code_builds_the_same_net():
    shape, layers = PRESETS["mnist_cnn"]
    code = layer_code(layers, parse_shape(shape))
    assert "nn.Conv2d(1, 8, kernel_size=3, stride=2, padding=1)," in code.splitlines()[1]
    model = eval(code, {"nn": nn})  # the code panel's text is runnable as it stands
    assert sum(p.numel() for p in model.parameters()) == 12_126
    assert model.eval()(torch.zeros(1, 1, 28, 28)).shape == (1, 10)


def test_layer_code_comments_a_concat():
    shape, layers = PRESETS["unet_block"]
    code = layer_code(layers, parse_shape(shape))
    assert "# torch.cat([x, skip], dim=1): +128 channels" in code
    assert "nn.Conv2d(256, 256, kernel_size=3, padding=1)," in code


def torch_output(row: dict, shape: tuple[int, ...]) -> tuple[int, ...] | None:
    """What torch itself makes of a random row, or None when it refuses."""
    kernel = tuple(int(size) for size in row["kernel"].split("x"))
    padding = tuple(int(size) for size in row["padding"].split("x"))
    if row["kind"] == "conv":
        module = nn.Conv2d(shape[0], row["out"], kernel, stride=row["stride"], padding=padding)
    elif row["kind"] == "conv_transpose":
        module = nn.ConvTranspose2d(shape[0], row["out"], kernel, stride=row["stride"], padding=padding,
                                    output_padding=row["output_padding"])
    else:
        module = nn.MaxPool2d(kernel, stride=row["stride"], padding=padding)
    try:
        with torch.no_grad():
            return tuple(module(torch.zeros((1, *shape))).shape[1:])
    except RuntimeError:
        return None


def test_formulas_agree_with_torch_on_random_rows():
    rng = random.Random(13)
    accepted = refused = 0
    for _ in range(200):
        kind = rng.choice(["conv", "conv_transpose", "maxpool"])
        row = {"kind": kind, "out": rng.randint(1, 3), "kernel": f"{rng.randint(1, 6)}x{rng.randint(1, 6)}",
               "stride": rng.randint(1, 4), "padding": f"{rng.randint(0, 3)}x{rng.randint(0, 3)}",
               "output_padding": rng.randint(0, 2)}
        shape = (rng.randint(1, 3), rng.randint(1, 10), rng.randint(1, 10))
        expected = torch_output(row, shape)
        try:
            table = trace([row], shape)
        except UserError:
            assert expected is None or 0 in expected, (row, shape, expected)
            refused += 1
            continue
        assert table["shape"].iloc[0] == "×".join(map(str, expected)), (row, shape)
        assert table["agrees"].iloc[0]
        accepted += 1
    assert accepted > 50 and refused > 20  # both sides of the arithmetic were exercised
