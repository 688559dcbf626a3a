"""Convolution arithmetic (Lessons 12, 13 and 7): output sizes of convolutions, transposed
convolutions and pooling along one spatial dimension, as torch computes them.

These formulas are the lesson itself, so they are written out; the tests hold them to torch's
own modules on hundreds of settings. Every bad setting is a ``UserError`` (a ``ValueError``)
whose message says what to change.
"""
from __future__ import annotations

import math

from core.errors import UserError


def _check_whole(**values: int) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int):
            raise UserError("arith.not_whole", "{name} must be a whole number, not {value}.", name=name, value=value)


def _check_settings(n: int, kernel: int, stride: int, padding: int, dilation: int) -> None:
    _check_whole(size=n, kernel=kernel, stride=stride, padding=padding, dilation=dilation)
    for name, value in (("size", n), ("kernel", kernel), ("stride", stride), ("dilation", dilation)):
        if value < 1:
            raise UserError("arith.below_one", "{name} must be at least 1 (it is {value}).", name=name, value=value)
    if padding < 0:
        raise UserError("arith.negative_padding", "Padding cannot be negative (it is {padding}).", padding=padding)


def effective_kernel(kernel: int, dilation: int = 1) -> int:
    """How many input cells a dilated kernel spans: d·(k − 1) + 1."""
    return dilation * (kernel - 1) + 1


def _empty_output(span: int, padded: int, n: int, padding: int) -> UserError:
    return UserError("arith.conv_too_small",
                     "The kernel spans {span} cells but the padded input has only {padded} ({n} + 2×{padding}): "
                     "the output would be empty. Use a smaller kernel or dilation, or more padding.",
                     span=span, padded=padded, n=n, padding=padding)


def conv_out(n: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    """⌊(n + 2p − d·(k − 1) − 1) / s⌋ + 1: the size of a convolution's output along one dimension."""
    _check_settings(n, kernel, stride, padding, dilation)
    span, padded = effective_kernel(kernel, dilation), n + 2 * padding
    if span > padded:
        raise _empty_output(span, padded, n, padding)
    return (padded - span) // stride + 1


def conv_transpose_out(n: int, kernel: int, stride: int = 1, padding: int = 0, output_padding: int = 0,
                       dilation: int = 1) -> int:
    """(n − 1)·s − 2p + d·(k − 1) + output_padding + 1: the size of a transposed convolution's output."""
    _check_settings(n, kernel, stride, padding, dilation)
    _check_whole(output_padding=output_padding)
    if output_padding < 0 or output_padding >= max(stride, dilation):
        raise UserError("arith.output_padding",
                        "Output padding must be at least 0 and smaller than the stride or the dilation "
                        "(here below {limit}); it only picks between output sizes the stride makes ambiguous.",
                        limit=max(stride, dilation))
    size = (n - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1
    if size < 1:
        raise UserError("arith.transpose_too_small",
                        "With padding {padding} the output would be {size} cells: padding crops the output, "
                        "and at most {most} can be cropped here. Use less padding.",
                        padding=padding, size=size, most=(size - 1 + 2 * padding) // 2)
    return size


def pool_out(n: int, kernel: int, stride: int | None = None, padding: int = 0, dilation: int = 1,
             ceil_mode: bool = False) -> int:
    """The size of a max or average pool's output (stride defaults to the kernel, as in torch);
    ``ceil_mode`` rounds up, but a window may not start in the right-hand padding."""
    stride = kernel if stride is None else stride
    _check_settings(n, kernel, stride, padding, dilation)
    if 2 * padding > kernel:  # torch's rule, whatever the dilation
        raise UserError("arith.pool_padding",
                        "Pooling pads at most half its kernel: padding {padding} is too much for a kernel "
                        "of {kernel}.", padding=padding, kernel=kernel)
    span, padded = effective_kernel(kernel, dilation), n + 2 * padding
    rounding = math.ceil if ceil_mode else math.floor  # ceil_mode lets the last window overhang the input
    size = rounding((padded - span) / stride) + 1
    if ceil_mode and (size - 1) * stride >= n + padding:  # ... but not start in the right-hand padding
        size -= 1
    if size < 1:
        raise _empty_output(span, padded, n, padding)
    return size


def conv_out_worked(n: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> str:
    """The convolution's size formula with these numbers in it, worked to its answer (or raising
    as ``conv_out`` does)."""
    size = conv_out(n, kernel, stride, padding, dilation)
    inside = n + 2 * padding - dilation * (kernel - 1) - 1
    return (f"⌊({n} + 2·{padding} − {dilation}·({kernel} − 1) − 1) / {stride}⌋ + 1"
            f" = ⌊{inside} / {stride}⌋ + 1 = {size}")


def conv_transpose_out_worked(n: int, kernel: int, stride: int = 1, padding: int = 0, output_padding: int = 0,
                              dilation: int = 1) -> str:
    """The transposed convolution's size formula with these numbers in it, worked to its answer."""
    size = conv_transpose_out(n, kernel, stride, padding, output_padding, dilation)
    return (f"({n} − 1)·{stride} − 2·{padding} + {dilation}·({kernel} − 1) + {output_padding} + 1"
            f" = {(n - 1) * stride} − {2 * padding} + {dilation * (kernel - 1)} + {output_padding} + 1 = {size}")
