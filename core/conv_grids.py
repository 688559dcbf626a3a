"""The pictures of the convolution lab as numbers: which input cells feed an output cell, a
transposed convolution worked out two ways, the overlap counts behind checkerboards, and
Lesson 12's spreadsheet deconvolution.

One channel, square grids, the same settings along both axes. The bookkeeping of windows,
stamps and inserted zeros is the lesson itself, so it is written out; every result is held
to ``torch.nn.functional`` by the tests.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from core.arithmetic import conv_out, conv_transpose_out
from core.errors import UserError

MAX_GRID = 16  # the largest input the lab draws: every cell keeps a readable number
MAX_CANVAS = 40  # the largest canvas or zero-inserted grid of a transposed convolution it draws


@dataclass(frozen=True)
class ConvSettings:
    """One square, one-channel (transposed) convolution: input n×n, kernel k×k."""

    n: int = 5
    kernel: int = 3
    stride: int = 1
    padding: int = 0
    dilation: int = 1
    output_padding: int = 0  # transposed convolutions only

    def conv_size(self) -> int:
        return conv_out(self.n, self.kernel, self.stride, self.padding, self.dilation)

    def transpose_size(self) -> int:
        return conv_transpose_out(self.n, self.kernel, self.stride, self.padding, self.output_padding, self.dilation)


def check_drawable(settings: ConvSettings, transposed: bool = False) -> None:
    """A UserError when the grids would be too big to read: the input and kernel, and for a transposed
    convolution its canvas of stamps and its zero-inserted grid."""
    if settings.n > MAX_GRID or settings.kernel > MAX_GRID:
        raise UserError("arith.too_big", "The lab draws grids up to {most}×{most}: use a smaller input or kernel.",
                        most=MAX_GRID)
    if transposed:
        spread = (settings.n - 1) * settings.stride + 1
        span = settings.dilation * (settings.kernel - 1)
        widest = spread + max(span, 2 * (span - settings.padding)) + settings.output_padding
        if widest > MAX_CANVAS:
            raise UserError("arith.canvas_too_big", "The transposed convolution would need a {size}×{size} grid, too "
                            "many cells to read (the lab draws up to {most}×{most}): use a smaller input, stride, "
                            "kernel or dilation.", size=widest, most=MAX_CANVAS)


def example_input(n: int, seed: int = 0) -> np.ndarray:
    """Small whole numbers (0 to 9), so that a student can add the products in their head."""
    return np.random.default_rng(seed).integers(0, 10, size=(n, n)).astype(float)


def example_kernel(k: int, seed: int = 0) -> np.ndarray:
    """Whole numbers from −1 to 2: sums stay short, and negative weights show up."""
    return np.random.default_rng(seed + 1000).integers(-1, 3, size=(k, k)).astype(float)


def _torch(grid: np.ndarray) -> torch.Tensor:
    return torch.tensor(grid, dtype=torch.float64)[None, None]  # a copy: the page may pass read-only arrays


def conv2d(x: np.ndarray, w: np.ndarray, s: ConvSettings) -> np.ndarray:
    """torch's answer, the one the pictures must agree with."""
    return F.conv2d(_torch(x), _torch(w), stride=s.stride, padding=s.padding, dilation=s.dilation)[0, 0].numpy()


def conv_transpose2d(x: np.ndarray, w: np.ndarray, s: ConvSettings) -> np.ndarray:
    return F.conv_transpose2d(_torch(x), _torch(w), stride=s.stride, padding=s.padding,
                              output_padding=s.output_padding, dilation=s.dilation)[0, 0].numpy()


# ----- the sliding window -------------------------------------------------------------------------------
def padded(x: np.ndarray, padding: int) -> np.ndarray:
    return np.pad(x, padding)


def window(row: int, col: int, s: ConvSettings) -> list[tuple[int, int, int, int]]:
    """The cells that feed output cell (row, col): (row, column) in the padded input, then the
    kernel's (row, column) that multiplies it."""
    return [(row * s.stride + i * s.dilation, col * s.stride + j * s.dilation, i, j)
            for i in range(s.kernel) for j in range(s.kernel)]


def window_sum(x: np.ndarray, w: np.ndarray, row: int, col: int,
               s: ConvSettings) -> tuple[list[tuple[float, float]], float]:
    """The products that make output cell (row, col), as (input value, weight) pairs, and their sum."""
    grid = padded(x, s.padding)
    pairs = [(float(grid[r, c]), float(w[i, j])) for r, c, i, j in window(row, col, s)]
    return pairs, sum(value * weight for value, weight in pairs)


def written_sum(pairs: list[tuple[float, float]], total: float, skip_zeros: bool = True) -> str:
    """"3·1 + 5·(−1) + … = 7": the sum as the lab writes it (padding's zeros left out when asked; only the
    factors get brackets)."""
    def number(v: float) -> str:
        text = f"{v:g}".replace("-", "−")
        return f"({text})" if v < 0 else text

    shown = [(v, w) for v, w in pairs if not (skip_zeros and v == 0)]
    terms = " + ".join(f"{number(v)}·{number(w)}" for v, w in shown) or "0"
    return f"{terms} = {total:g}".replace("-", "−")


# ----- the transposed convolution, two ways -------------------------------------------------------------
@dataclass(frozen=True)
class Stamped:
    """Way (a): each input cell stamps a scaled copy of the kernel; overlaps add up; the padding
    is then cut off every side of the canvas."""

    canvas: np.ndarray  # before cropping
    crop: int  # cells cut from the top and left (the padding)
    output: np.ndarray


def stamp_origin(row: int, col: int, s: ConvSettings) -> tuple[int, int]:
    """Where input cell (row, col) puts its kernel's top-left corner on the canvas."""
    return row * s.stride, col * s.stride


def stamped(x: np.ndarray, w: np.ndarray, s: ConvSettings, upto: int | None = None) -> Stamped:
    """The stamps of the first ``upto`` input cells (row by row; all of them when None)."""
    size = s.transpose_size()
    span = s.dilation * (s.kernel - 1) + 1
    canvas = np.zeros(((s.n - 1) * s.stride + span + s.output_padding,) * 2)
    cells = [(r, c) for r in range(s.n) for c in range(s.n)][:upto]
    for r, c in cells:
        top, left = stamp_origin(r, c, s)
        canvas[top:top + span:s.dilation, left:left + span:s.dilation] += x[r, c] * w
    return Stamped(canvas, s.padding, canvas[s.padding:s.padding + size, s.padding:s.padding + size])


@dataclass(frozen=True)
class ZeroInserted:
    """Way (b): stride − 1 zeros between the input's cells, d·(k − 1) − p zeros around (the
    output padding on the bottom and right), then an ordinary stride-1 convolution with the
    kernel flipped."""

    grid: np.ndarray
    kind: np.ndarray  # per cell: 0 an input value, 1 an inserted zero, 2 padding
    flipped: np.ndarray
    settings: ConvSettings  # of the ordinary convolution over ``grid``
    output: np.ndarray


def zero_inserted(x: np.ndarray, w: np.ndarray, s: ConvSettings) -> ZeroInserted:
    s.transpose_size()  # the same checks, the same messages
    spread = (s.n - 1) * s.stride + 1
    grid, kind = np.zeros((spread, spread)), np.ones((spread, spread), dtype=int)
    grid[::s.stride, ::s.stride] = x
    kind[::s.stride, ::s.stride] = 0
    around = s.dilation * (s.kernel - 1) - s.padding  # below 0: the padding crops the spread input instead
    grid = pad_or_crop(grid, around, around + s.output_padding)
    kind = pad_or_crop(kind, around, around + s.output_padding, fill=2)
    flipped = w[::-1, ::-1].copy()
    ordinary = ConvSettings(grid.shape[0], s.kernel, 1, 0, s.dilation)
    return ZeroInserted(grid, kind, flipped, ordinary, conv2d(grid, flipped, ordinary))


def two_ways_difference(x: np.ndarray, w: np.ndarray, s: ConvSettings) -> float:
    """The largest difference of either way, (a) stamps or (b) zero insertion, from torch's conv_transpose2d."""
    by_torch = conv_transpose2d(x, w, s)
    return float(max(np.abs(stamped(x, w, s).output - by_torch).max(),
                     np.abs(zero_inserted(x, w, s).output - by_torch).max()))


def undoes_shape(s: ConvSettings) -> bool:
    """Whether the convolution with the same settings takes the transposed one's output back to its input size."""
    try:
        return conv_out(s.transpose_size(), s.kernel, s.stride, s.padding, s.dilation) == s.n
    except UserError:
        return False


def pad_or_crop(grid: np.ndarray, before: int, after: int, fill: int = 0) -> np.ndarray:
    """``before`` cells added above and left of ``grid`` (cut off when negative), ``after`` below and right."""
    grid = grid[max(0, -before):grid.shape[0] - max(0, -after), max(0, -before):grid.shape[1] - max(0, -after)]
    return np.pad(grid, (max(0, before), max(0, after)), constant_values=fill)


# ----- checkerboards ------------------------------------------------------------------------------------
def overlap_counts_1d(n: int, kernel: int, stride: int) -> np.ndarray:
    """How many (input cell, kernel cell) pairs land on each output cell of a transposed conv
    (no padding): the stamps of an all-ones input and kernel."""
    counts = np.zeros((n - 1) * stride + kernel, dtype=int)
    for start in range(0, (n - 1) * stride + 1, stride):
        counts[start:start + kernel] += 1
    return counts


def overlap_counts(n: int, kernel: int, stride: int) -> np.ndarray:
    """The 2-D map: the product of the row and column counts."""
    counts = overlap_counts_1d(n, kernel, stride)
    return np.outer(counts, counts)


def interior(counts: np.ndarray, kernel: int) -> np.ndarray:
    """The map without its edges (a kernel's width on every side), where only the stride's rhythm is left."""
    cut = kernel - 1
    return counts[cut:-cut, cut:-cut] if counts.shape[0] > 2 * cut else counts[:0, :0]


def is_even(kernel: int, stride: int) -> bool:
    """The lesson's rule: the overlap is even exactly when the stride divides the kernel size."""
    return kernel % stride == 0


# ----- Lesson 12's spreadsheet deconvolution ------------------------------------------------------------
SHEET_INPUT = np.array([[0, 2, 7, 9], [1, 4, 8, 9], [0, 3, 6, 8], [0, 1, 5, 7]], dtype=float)  # an edge, like a digit's
SHEET_KERNEL = np.array([[1, 0, -1], [2, 0, -2], [1, 0, -1]], dtype=float)  # a Sobel edge detector


@dataclass(frozen=True)
class SheetFit:
    small: np.ndarray  # the 2×2 the convolution made
    padded: np.ndarray  # the 2×2 padded by 2 on every side: 6×6
    losses: list[float]  # the L1 error to the 16 original cells, step by step
    filters: list[np.ndarray]  # the fitted 3×3 at each step
    reconstructions: list[np.ndarray]  # its 4×4 at each step
    least_squares_l1: float  # the L1 error of the best filter by least squares, for comparison


def spreadsheet_fit(x: np.ndarray = SHEET_INPUT, kernel: np.ndarray = SHEET_KERNEL, steps: int = 300,
                    lr: float = 0.05) -> SheetFit:
    """Convolve the 4×4 down to 2×2, then fit the 9 numbers of a 3×3 filter that turns the padded
    2×2 back into the 4×4, by gradient descent on the L1 error from a filter of zeros (the
    spreadsheet's Solver). Adam with a cosine decay: L1's gradient never shrinks near the minimum."""
    check_sheet(x, kernel)
    small = conv2d(x, kernel, ConvSettings(4, 3))
    scale = max(1.0, float(np.abs(small).max()))  # the same steps whatever the numbers' size
    source = _torch(small / scale)
    target = torch.as_tensor(x, dtype=torch.float64)
    weights = torch.zeros(1, 1, 3, 3, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.Adam([weights], lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    losses, filters, reconstructions = [], [], []
    for _ in range(steps + 1):
        reconstruction = F.conv2d(source, weights, padding=2)[0, 0]
        loss = (reconstruction - target).abs().sum()
        losses.append(float(loss.detach()))
        filters.append(weights.detach()[0, 0].numpy() / scale)
        reconstructions.append(reconstruction.detach().numpy().copy())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    return SheetFit(small, np.pad(small, 2), losses, filters, reconstructions, least_squares_l1(small, x))


def least_squares_l1(small: np.ndarray, x: np.ndarray) -> float:
    """The L1 error of the filter that minimises the squared error (solved exactly): the L1 fit
    should do at least as well by its own measure."""
    patches = F.unfold(_torch(small), 3, padding=2)[0].T  # 16 × 9: the padded 2×2 under each placement
    solution = torch.linalg.lstsq(patches, torch.as_tensor(x, dtype=torch.float64).reshape(16, 1)).solution
    return float((patches @ solution - torch.as_tensor(x).reshape(16, 1)).abs().sum())


def check_sheet(x: np.ndarray, kernel: np.ndarray) -> None:
    if x.shape != (4, 4) or kernel.shape != (3, 3):
        raise UserError("arith.sheet_shape", "The spreadsheet needs a 4×4 input and a 3×3 kernel.")
    if not (np.isfinite(x).all() and np.isfinite(kernel).all()) or max(np.abs(x).max(), np.abs(kernel).max()) > 1000:
        raise UserError("arith.sheet_numbers", "Use numbers between −1000 and 1000 in every cell.")
    if not np.abs(conv2d(x, kernel, ConvSettings(4, 3))).any():
        raise UserError("arith.sheet_zero", "This kernel turns the input into zeros, and nothing can be rebuilt "
                        "from zeros: change a number of the input or of the kernel.")
