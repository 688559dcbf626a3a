"""The shape tracer of the convolution arithmetic lab (Lessons 7, 12 and 13): a table of layers and
an input shape give, for every layer, its output shape, parameters and multiply-adds twice, once by
the formulas of ``core.arithmetic`` and once by running the real torch module on a zero tensor, so
a student sees the lesson's arithmetic hold (or sees exactly where it does not).

Rows come from a Streamlit data editor, so their values may be floats, strings, None or NaN: each is
coerced or refused with a ``UserError`` (key ``tracer.*``, params ``row`` and ``kind``) that says
what to change. Sizes are checked by formula before any tensor is made, so an enormous input is
refused at once instead of filling the memory.
"""
from __future__ import annotations

import math
import numbers
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import pandas as pd
import torch
from torch import nn

from core.arithmetic import conv_out, conv_transpose_out, pool_out
from core.errors import UserError

KINDS = ("conv", "conv_transpose", "conv1x1", "maxpool", "avgpool", "upsample", "pixel_shuffle",
         "batchnorm", "relu", "concat", "flatten", "linear")
COLUMNS = ("row", "kind", "settings", "shape", "torch_shape", "params", "torch_params", "macs", "agrees")
MAX_ROWS = 40
MAX_DIM = 100_000
MAX_ELEMENTS = 50_000_000  # one activation: 200 MB of float32
MAX_PARAMS = 20_000_000  # one layer's weights: 80 MB of float32
MAX_MACS = 5_000_000_000  # the whole table: a few seconds of CPU at worst

Shape = tuple[int, ...]  # without the batch: (C,) or (C, H, W)
Pair = tuple[int, int]  # (height, width)

_PAIR = re.compile(r"\s*([0-9]{1,9})\s*(?:[x×X]\s*([0-9]{1,9})\s*)?")
_SHAPE_PART = re.compile(r"\s*([0-9]{1,9})\s*")
_WHOLE = re.compile(r"\s*[-+]?[0-9]{1,9}\s*")
_TRUE, _FALSE = ("true", "yes", "1"), ("false", "no", "0")


def shape_text(shape: Shape) -> str:
    """16×14×14: the way the lessons and ``core.summary`` write a shape."""
    return "×".join(str(size) for size in shape)


def parse_pair(text: str) -> Pair:
    """(height, width) from "3", "1x7", "1×7" or " 3 x 3 "."""
    match = _PAIR.fullmatch(str(text))
    if not match:
        raise UserError("tracer.bad_pair",
                        'Write a size as one whole number or two joined by x, e.g. 3 or 1x7 (got "{text}").',
                        text=text)
    first = int(match.group(1))
    return first, int(match.group(2) or first)


def parse_shape(text: str) -> Shape:
    """The input shape without the batch, from "512" (C: flat features) or "1x28x28" (C×H×W)."""
    parts = re.split(r"[x×X]", str(text))
    matches = [_SHAPE_PART.fullmatch(part) for part in parts]
    if len(parts) not in (1, 3) or not all(matches) or any(int(m.group(1)) < 1 for m in matches):
        raise UserError("tracer.bad_shape",
                        "Write the input shape without the batch as C or C×H×W, in positive whole numbers, "
                        'e.g. 512 or 1x28x28 (got "{text}").', text=text)
    return tuple(int(m.group(1)) for m in matches)


def _is_empty(value: object) -> bool:
    if isinstance(value, str):
        return not value.strip()
    return value is None or (pd.api.types.is_scalar(value) and bool(pd.isna(value)))


# ----- one row, read and checked ---------------------------------------------------------------------
class _Row:
    """A table row's settings, each coerced on reading; every error names the row and its kind."""

    def __init__(self, number: int, values: Mapping):
        self.number, self.values = number, values
        self.kind = "" if _is_empty(values.get("kind")) else str(values.get("kind")).strip()
        if self.kind not in KINDS:
            raise UserError("tracer.unknown_kind", 'Row {row}: unknown layer kind "{kind}". Use one of {kinds}.',
                            row=number, kind=self.kind, kinds=", ".join(KINDS))

    def _raw(self, name: str) -> object:
        value = self.values.get(name)
        return None if _is_empty(value) else value

    def whole(self, name: str, default: int | None) -> int | None:
        """A whole number setting; empty gives ``default``."""
        value = self._raw(name)
        if value is None:
            return default
        if isinstance(value, numbers.Integral) and not isinstance(value, bool):
            return int(value)
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and _WHOLE.fullmatch(value):
            return int(value)
        raise UserError("tracer.bad_number", 'Row {row} ({kind}): {name} must be a whole number (got "{value}").',
                        row=self.number, kind=self.kind, name=name, value=value)

    def out(self) -> int:
        """Output channels or features, or a concat's extra channels: required, at least 1."""
        value = self._raw("out")
        out = None if value is None else self.whole("out", None)
        if out is None or out < 1:
            raise UserError("tracer.needs_out",
                            'Row {row} ({kind}): set out (the output channels or features) to a whole number '
                            'of at least 1 (got "{value}").',
                            row=self.number, kind=self.kind, value="" if value is None else value)
        return out

    def scale(self) -> int:
        scale = self.whole("scale", 2)
        if scale < 1:
            raise UserError("tracer.below_one", "Row {row} ({kind}): {name} must be at least 1 (got {value}).",
                            row=self.number, kind=self.kind, name="scale", value=scale)
        return scale

    def pair(self, name: str, default: Pair | None = None) -> Pair:
        """A kernel or padding, "3" or "1x7"; a bare number (3 or 3.0) counts for both sides."""
        value = self._raw(name)
        if value is None and default is not None:
            return default
        number = value if isinstance(value, numbers.Real) and not isinstance(value, bool) else None
        if number is not None and float(number).is_integer() and number >= 0:
            return int(number), int(number)
        try:
            return parse_pair("" if value is None else str(value))
        except UserError:
            raise UserError("tracer.row_bad_pair",
                            "Row {row} ({kind}): write {name} as one whole number or two joined by x, "
                            'e.g. 3 or 1x7 (got "{value}").',
                            row=self.number, kind=self.kind, name=name, value="" if value is None else value) from None

    def bias(self) -> bool:
        """Ticked or not; empty means True, torch's default."""
        value = self._raw("bias")
        if value is None:
            return True
        if isinstance(value, (bool, numbers.Integral)) or type(value).__name__ == "bool_":  # numpy's bool too
            return bool(value)
        if str(value).strip().lower() in _TRUE + _FALSE:
            return str(value).strip().lower() in _TRUE
        raise UserError("tracer.bad_bias", 'Row {row} ({kind}): bias must be ticked or not (got "{value}").',
                        row=self.number, kind=self.kind, value=value)

    def image(self, shape: Shape) -> tuple[int, int, int]:
        """The C, H, W of an input this layer needs as an image."""
        if len(shape) != 3:
            raise UserError("tracer.needs_image",
                            "Row {row} ({kind}) needs a C×H×W input, but its input is {shape}. "
                            "Move it before the flatten, or start from a C×H×W input.",
                            row=self.number, kind=self.kind, shape=shape_text(shape))
        return shape

    def along(self, axis: str, formula: Callable[..., int], *settings: int | None) -> int:
        """One spatial size by a ``core.arithmetic`` formula, its error wrapped with the row and axis."""
        try:
            return formula(*settings)
        except UserError as error:
            raise UserError("tracer.row_arith", "Row {row} ({kind}), along {axis}: {detail}",
                            row=self.number, kind=self.kind, axis=axis, detail=str(error),
                            detail_key=error.key, detail_params=error.params) from error


# ----- one row, worked out by formula ---------------------------------------------------------------
@dataclass(frozen=True)
class Step:
    """A row by formula, and the torch module (class name and arguments) that must agree with it."""

    kind: str
    settings: str
    shape: Shape
    params: int = 0
    macs: int = 0
    module: str = ""  # an ``nn`` class; empty for concat, which is torch.cat, not a module
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    skip_channels: int = 0  # concat only


def _size(pair: Pair) -> int | Pair:
    """3 for (3, 3): the way one writes a square kernel in torch and in the lessons."""
    return pair[0] if pair[0] == pair[1] else pair


def _size_text(pair: Pair) -> str:
    return str(pair[0]) if pair[0] == pair[1] else f"{pair[0]}×{pair[1]}"


def _settings(kernel: Pair, stride: int | None, padding: Pair, output_padding: int = 0) -> str:
    parts = [f"k{_size_text(kernel)}"]
    parts += [f"s{stride}"] if stride not in (None, 1) else []
    parts += [f"p{_size_text(padding)}"] if padding != (0, 0) else []
    parts += [f"op{output_padding}"] if output_padding else []
    return " ".join(parts)


def _conv_kwargs(kernel: Pair, stride: int, padding: Pair, bias: bool) -> dict:
    """Only what differs from torch's defaults, so the code panel reads like the lessons."""
    kwargs: dict = {"kernel_size": _size(kernel)}
    kwargs |= {"stride": stride} if stride != 1 else {}
    kwargs |= {"padding": _size(padding)} if padding != (0, 0) else {}
    return kwargs | ({"bias": False} if not bias else {})


def _conv(row: _Row, shape: Shape) -> Step:
    channels, height, width = row.image(shape)
    kernel = (1, 1) if row.kind == "conv1x1" else row.pair("kernel")
    out, stride, padding, bias = row.out(), row.whole("stride", 1), row.pair("padding", (0, 0)), row.bias()
    size = (row.along("H", conv_out, height, kernel[0], stride, padding[0]),
            row.along("W", conv_out, width, kernel[1], stride, padding[1]))
    weights = out * channels * kernel[0] * kernel[1]
    return Step(row.kind, _settings(kernel, stride, padding), (out, *size), weights + (out if bias else 0),
                out * size[0] * size[1] * channels * kernel[0] * kernel[1],
                "Conv2d", (channels, out), _conv_kwargs(kernel, stride, padding, bias))


def _conv_transpose(row: _Row, shape: Shape) -> Step:
    channels, height, width = row.image(shape)
    kernel, out, stride = row.pair("kernel"), row.out(), row.whole("stride", 1)
    padding, output_padding, bias = row.pair("padding", (0, 0)), row.whole("output_padding", 0), row.bias()
    size = (row.along("H", conv_transpose_out, height, kernel[0], stride, padding[0], output_padding),
            row.along("W", conv_transpose_out, width, kernel[1], stride, padding[1], output_padding))
    weights = channels * out * kernel[0] * kernel[1]
    kwargs = _conv_kwargs(kernel, stride, padding, bias)
    kwargs |= {"output_padding": output_padding} if output_padding else {}
    # every input cell scatters its channels through the whole kernel: in cells × weights
    return Step(row.kind, _settings(kernel, stride, padding, output_padding), (out, *size),
                weights + (out if bias else 0), height * width * weights, "ConvTranspose2d", (channels, out), kwargs)


def _pool(row: _Row, shape: Shape) -> Step:
    channels, height, width = row.image(shape)
    kernel, stride, padding = row.pair("kernel"), row.whole("stride", None), row.pair("padding", (0, 0))
    size = (row.along("H", pool_out, height, kernel[0], stride, padding[0]),
            row.along("W", pool_out, width, kernel[1], stride, padding[1]))
    kwargs: dict = {"kernel_size": _size(kernel)}
    kwargs |= {"stride": stride} if stride is not None else {}  # torch's default stride is the kernel
    kwargs |= {"padding": _size(padding)} if padding != (0, 0) else {}
    module = "MaxPool2d" if row.kind == "maxpool" else "AvgPool2d"
    return Step(row.kind, _settings(kernel, stride, padding), (channels, *size), module=module, kwargs=kwargs)


def _upsample(row: _Row, shape: Shape) -> Step:
    channels, height, width = row.image(shape)
    scale = row.scale()
    return Step(row.kind, f"×{scale}", (channels, height * scale, width * scale), module="Upsample",
                kwargs={"scale_factor": scale, "mode": "nearest"})


def _pixel_shuffle(row: _Row, shape: Shape) -> Step:
    channels, height, width = row.image(shape)
    scale = row.scale()
    if channels % (scale * scale):
        raise UserError("tracer.shuffle_channels",
                        "Row {row} ({kind}): pixel shuffle by {scale} needs channels divisible by {square} "
                        "({scale}×{scale}), but gets {channels}. Make the previous layer's out a multiple of {square}.",
                        row=row.number, kind=row.kind, scale=scale, square=scale * scale, channels=channels)
    return Step(row.kind, f"×{scale}", (channels // (scale * scale), height * scale, width * scale),
                module="PixelShuffle", args=(scale,))


def _batchnorm(row: _Row, shape: Shape) -> Step:
    channels = row.image(shape)[0]
    # a weight and a bias per channel; the running mean and variance are buffers, not parameters
    return Step(row.kind, "", shape, 2 * channels, module="BatchNorm2d", args=(channels,))


def _relu(row: _Row, shape: Shape) -> Step:
    return Step(row.kind, "", shape, module="ReLU")


def _concat(row: _Row, shape: Shape) -> Step:
    skip = row.out()
    return Step(row.kind, f"+{skip}", (shape[0] + skip, *shape[1:]), skip_channels=skip)


def _flatten(row: _Row, shape: Shape) -> Step:
    return Step(row.kind, "", (math.prod(shape),), module="Flatten")


def _linear(row: _Row, shape: Shape) -> Step:
    if len(shape) != 1:
        raise UserError("tracer.needs_flat",
                        "Row {row} ({kind}) gets a {shape} input, but linear needs a flat one: add a flatten first.",
                        row=row.number, kind=row.kind, shape=shape_text(shape))
    out, bias = row.out(), row.bias()
    return Step(row.kind, "", (out,), shape[0] * out + (out if bias else 0), shape[0] * out,
                "Linear", (shape[0], out), {} if bias else {"bias": False})


_STEPS: dict[str, Callable[[_Row, Shape], Step]] = {
    "conv": _conv, "conv_transpose": _conv_transpose, "conv1x1": _conv, "maxpool": _pool, "avgpool": _pool,
    "upsample": _upsample, "pixel_shuffle": _pixel_shuffle, "batchnorm": _batchnorm, "relu": _relu,
    "concat": _concat, "flatten": _flatten, "linear": _linear,
}


# ----- the whole table -------------------------------------------------------------------------------
def _check_input(shape: Shape) -> Shape:
    shape = tuple(shape)
    if len(shape) not in (1, 3) or not all(isinstance(size, int) and size >= 1 for size in shape):
        raise UserError("tracer.bad_shape",
                        "Write the input shape without the batch as C or C×H×W, in positive whole numbers, "
                        'e.g. 512 or 1x28x28 (got "{text}").', text=shape_text(shape))
    if max(shape) > MAX_DIM or math.prod(shape) > MAX_ELEMENTS:
        raise UserError("tracer.input_too_big",
                        "The input {shape} is too big to trace here (at most {most_dim:,} per dimension and "
                        "{most:,} numbers). Use a smaller input.",
                        shape=shape_text(shape), most_dim=MAX_DIM, most=MAX_ELEMENTS)
    return shape


def _check_step(row: _Row, step: Step, macs_so_far: int) -> None:
    """Refuses, before anything is allocated, a layer whose output, weights or work would not fit."""
    if max(step.shape) > MAX_DIM or math.prod(step.shape) > MAX_ELEMENTS:
        raise UserError("tracer.too_big",
                        "Row {row} ({kind}) would output {shape}: too big to trace here (at most {most_dim:,} per "
                        "dimension and {most:,} numbers). Use a smaller input, scale or out.",
                        row=row.number, kind=row.kind, shape=shape_text(step.shape), most_dim=MAX_DIM,
                        most=MAX_ELEMENTS)
    if step.params > MAX_PARAMS:
        raise UserError("tracer.too_many_params",
                        "Row {row} ({kind}) would have {params:,} parameters; at most {most:,} can be built here. "
                        "Use fewer channels or features.", row=row.number, kind=row.kind, params=step.params,
                        most=MAX_PARAMS)
    if macs_so_far + step.macs > MAX_MACS:
        raise UserError("tracer.too_much_work",
                        "Row {row} ({kind}) brings the table to {macs:,} multiply-adds; at most {most:,} can run "
                        "here. Use a smaller input or fewer channels.", row=row.number, kind=row.kind,
                        macs=macs_so_far + step.macs, most=MAX_MACS)


def plan(layers: list[Mapping], input_shape: Shape) -> list[tuple[Shape, Step]]:
    """Each row's input shape and its step, by formula only: every row is checked before torch runs."""
    if len(layers) > MAX_ROWS:
        raise UserError("tracer.too_many_rows", "The table has {count} rows; at most {most} can be traced. "
                        "Delete some rows.", count=len(layers), most=MAX_ROWS)
    shape, macs, steps = _check_input(input_shape), 0, []
    for number, values in enumerate(layers, start=1):
        row = _Row(number, values)
        step = _STEPS[row.kind](row, shape)
        _check_step(row, step, macs)
        steps.append((shape, step))
        shape, macs = step.shape, macs + step.macs
    return steps


def _run_torch(step: Step, shape: Shape) -> tuple[Shape, int]:
    """The output shape and parameter count of the real torch layer, on one zero example."""
    x = torch.zeros((1, *shape))
    if step.kind == "concat":
        return tuple(torch.cat([x, torch.zeros((1, step.skip_channels, *shape[1:]))], dim=1).shape[1:]), 0
    module = getattr(nn, step.module)(*step.args, **step.kwargs).eval()  # eval: BatchNorm of a 1×1 batch of one
    return tuple(module(x).shape[1:]), sum(p.numel() for p in module.parameters())


def trace(layers: list[Mapping], input_shape: Shape) -> pd.DataFrame:
    """One row per layer: settings, formula shape / params / multiply-adds, and torch's shape / params.

    ``macs`` counts the multiply-adds of one example: a conv does in channels × kernel area of them
    for every output number, a transposed conv does out channels × kernel area for every input
    number, a linear layer in × out. Bias adds, batchnorm, relu, pooling, upsampling, pixel
    shuffle, concat and flatten count 0: they are cheap next to the convs. Each torch layer runs
    on a zero tensor of the formula's input shape, so a disagreement shows on its own row.
    """
    rows = []
    with torch.no_grad():
        for number, (shape, step) in enumerate(plan(layers, input_shape), start=1):
            torch_shape, torch_params = _run_torch(step, shape)
            rows.append({"row": number, "kind": step.kind, "settings": step.settings, "shape": shape_text(step.shape),
                         "torch_shape": shape_text(torch_shape), "params": step.params, "torch_params": torch_params,
                         "macs": step.macs, "agrees": step.shape == torch_shape and step.params == torch_params})
    return pd.DataFrame(rows, columns=list(COLUMNS))


def _code_value(value: object) -> str:
    return f'"{value}"' if isinstance(value, str) else repr(value)


def _code_line(step: Step) -> str:
    if step.kind == "concat":
        return f"# torch.cat([x, skip], dim=1): +{step.skip_channels} channels (nn.Sequential cannot concatenate)"
    arguments = [_code_value(arg) for arg in step.args] + [f"{k}={_code_value(v)}" for k, v in step.kwargs.items()]
    return f"nn.{step.module}({', '.join(arguments)}),"


def layer_code(layers: list[Mapping], input_shape: Shape) -> str:
    """The table as PyTorch code, ``nn.Sequential(...)`` with one line per row, for the code panel."""
    lines = [f"    {_code_line(step)}" for _shape, step in plan(layers, input_shape)]
    return "\n".join(["nn.Sequential(", *lines, ")"])


# ----- presets -------------------------------------------------------------------------------------
def _layer(kind: str, out: int | None = None, kernel: str = "", stride: int | None = None, padding: str = "0",
           bias: bool = False, **more: int) -> dict:
    return {"kind": kind, "out": out, "kernel": kernel, "stride": stride, "padding": padding, "bias": bias, **more}


def _bn_relu() -> list[dict]:
    return [_layer("batchnorm"), _layer("relu")]


def _mnist_cnn() -> list[dict]:
    """core.models.mnist_cnn.basic_cnn: conv (with bias) + BatchNorm (+ ReLU, except after the last)."""
    layers = []
    for out in (8, 16, 32, 16):
        layers += [_layer("conv", out, "3", 2, "1", bias=True), *_bn_relu()]
    return [*layers, _layer("conv", 10, "3", 2, "1", bias=True), _layer("batchnorm"), _layer("flatten")]


def _dcgan_generator() -> list[dict]:
    """The lesson's DCGAN generator (isize 64, nz 100, ngf 64, nc 3); its final tanh has no row."""
    layers = [_layer("conv_transpose", 512, "4", 1, "0"), *_bn_relu()]
    for out in (256, 128, 64):
        layers += [_layer("conv_transpose", out, "4", 2, "1"), *_bn_relu()]
    return [*layers, _layer("conv_transpose", 3, "4", 2, "1")]


def _dcgan_discriminator() -> list[dict]:
    """The lesson's DCGAN discriminator (ndf 64); its LeakyReLUs are relu rows, same shapes."""
    layers = [_layer("conv", 64, "4", 2, "1"), _layer("relu")]
    for out in (128, 256, 512):
        layers += [_layer("conv", out, "4", 2, "1"), *_bn_relu()]
    return [*layers, _layer("conv", 1, "4", 1, "0")]


def _unet_block() -> list[dict]:
    """A fastai-like U-Net decoder block (UnetBlock): a 1x1 conv to 4·128 channels and a pixel shuffle
    double the size (256×14×14 → 128×28×28, then a ReLU, as PixelShuffle_ICNR), the encoder's 128-channel
    skip is concatenated (and ReLU'd with it), and two 3x3 convs mix them. fastai also BatchNorms the
    skip and initialises the 1x1 with ICNR: neither changes a shape, and the table has no skip input."""
    return [_layer("conv1x1", 4 * 128, bias=True), _layer("pixel_shuffle", scale=2), _layer("relu"),
            _layer("concat", 128), _layer("relu"),
            _layer("conv", 256, "3", 1, "1", bias=True), _layer("relu"),
            _layer("conv", 256, "3", 1, "1", bias=True), _layer("relu")]


def _inception_resnet_b() -> list[dict]:
    """core.models.inception.InceptionResNetB's longer branch (each conv + BN + ReLU, as basic_conv),
    then the concat of the 1x1 branch's 192 channels and the 1x1 projection back to 1088 (with bias).
    The 1x1 branch's own conv and the scaled residual add are not rows: a table runs one path."""
    return [_layer("conv1x1", 128), *_bn_relu(), _layer("conv", 160, "1x7", 1, "0x3"), *_bn_relu(),
            _layer("conv", 192, "7x1", 1, "3x0"), *_bn_relu(), _layer("concat", 192),
            _layer("conv1x1", 1088, bias=True)]


# Lesson 13: Inception replaces a 7x7 by a 1x7 then a 7x1 (14 weights per channel pair instead of
# 49), and narrows the channels with 1x1 convs first. Its convs have no bias: a BatchNorm follows.
PRESETS: dict[str, tuple[str, list[dict]]] = {
    "mnist_cnn": ("1x28x28", _mnist_cnn()),
    "dcgan_g": ("100x1x1", _dcgan_generator()),
    "dcgan_d": ("3x64x64", _dcgan_discriminator()),
    "unet_block": ("256x14x14", _unet_block()),
    "inception_7x7": ("192x17x17", [_layer("conv", 192, "7x7", 1, "3x3")]),
    "inception_factored": ("192x17x17", [_layer("conv", 192, "1x7", 1, "0x3"), _layer("conv", 192, "7x1", 1, "3x0")]),
    "inception_bottleneck": ("192x17x17", [_layer("conv1x1", 64), _layer("conv", 64, "1x7", 1, "0x3"),
                                           _layer("conv", 64, "7x1", 1, "3x0"), _layer("conv1x1", 192)]),
    "inception_resnet_b": ("1088x17x17", _inception_resnet_b()),
}
INCEPTION_VARIANTS = ("inception_7x7", "inception_factored", "inception_bottleneck")


def inception_comparison() -> pd.DataFrame:
    """Params and multiply-adds of the three ways to a 7x7 receptive field at 192×17×17.

    The whole InceptionResNetB block is left out: it has a residual branch and another input width,
    so its numbers would not compare like for like with these three.
    """
    rows = []
    for name in INCEPTION_VARIANTS:
        shape, layers = PRESETS[name]
        table = trace(layers, parse_shape(shape))
        rows.append({"preset": name, "params": int(table["params"].sum()), "macs": int(table["macs"].sum())})
    return pd.DataFrame(rows, columns=["preset", "params", "macs"])
