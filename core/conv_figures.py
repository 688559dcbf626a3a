"""Figures of the convolution lab (plotly, from plain arrays): grids of numbered cells side by side
(input ∗ kernel = output), the overlap map behind checkerboards, and the spreadsheet fit's error
curve. ``labels`` hold the page's translated words."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import plotly.graph_objects as go

from core.arithmetic import effective_kernel
from core.conv_grids import ConvSettings, SheetFit, conv2d, padded, stamp_origin, stamped, window, zero_inserted
from core.viz import PALETTE

# What a cell is, and its colour: every grid of the lab uses these, so a colour means one thing.
VALUE, PADDING, INSERTED, FEEDS, CURRENT, KERNEL, DONE, PENDING = range(8)
CELL_COLOURS = ("#e8eef6", "#f4f4f4", "#fdf0c2", "#ffb74d", "#4fc3f7", "#d1c4e9", "#c8e6c9", "#fafafa")
GRID_LABEL_KEYS = ("input", "padded_input", "kernel", "output", "canvas", "spread", "flipped", "padded", "filter",
                   "rebuilt", "original", "cell")  # every ``labels`` key of the grid figures below
PAGE_WIDTH = 1000  # the pixels a wide page gives a chart, for the cell size and the numbers' font


@dataclass
class Panel:
    """One grid: its numbers (NaN leaves a cell blank), what each cell is (the constants above), and
    rectangles to draw around some cells: (top, left, height, width, colour)."""

    title: str
    values: np.ndarray
    kinds: np.ndarray
    boxes: list[tuple[int, int, int, int, str]] = field(default_factory=list)
    decimals: int | None = None  # None: as few as the number needs


def cell_text(value: float, decimals: int | None = None) -> str:
    if np.isnan(value):
        return ""
    text = f"{value:g}" if decimals is None else f"{value:.{decimals}f}"
    return text.replace("-", "−")


def _colour_scale() -> list[tuple[float, str]]:
    """One flat band per kind of cell: a heatmap of the kinds paints each its own colour."""
    bands = len(CELL_COLOURS)
    scale = []
    for kind, colour in enumerate(CELL_COLOURS):
        scale += [(kind / bands, colour), ((kind + 1) / bands, colour)]
    return scale


def grids_figure(panels: list[Panel], joiners: list[str], labels: dict[str, str]) -> go.Figure:
    """The panels left to right, top-aligned, with ``joiners`` ("∗", "=") written between them; every
    cell the same size. ``labels``: "cell" (the hover's "row {row}, column {column}").

    Built as plain dicts and handed to plotly unvalidated: these are the lab's most redrawn figures
    (every step of Play, every slider), and validating some thousand cells one property at a time
    took most of a redraw. The hover reads each cell's column from ``customdata`` (a small integer
    array, sent packed) rather than from one string per cell."""
    gap = 1.6
    total_columns = sum(panel.values.shape[1] for panel in panels) + gap * (len(panels) - 1)
    rows = max(panel.values.shape[0] for panel in panels)
    cell = min(44.0, PAGE_WIDTH / total_columns)
    font = {"size": max(8, min(16, int(cell * 0.48))), "color": "#263238"}
    traces, annotations, shapes = [], [], []
    left = 0.0
    for index, panel in enumerate(panels):
        height, width = panel.values.shape
        where = labels["cell"].format(row="%{y}", column="%{customdata}")
        traces.append({
            "type": "heatmap", "z": panel.kinds.astype(np.int8), "x": left + np.arange(width), "y": np.arange(height),
            "customdata": np.tile(np.arange(width, dtype=np.int8), (height, 1)),
            "text": [[cell_text(v, panel.decimals) for v in row] for row in panel.values], "texttemplate": "%{text}",
            "textfont": font, "hovertemplate": f"{panel.title}<br>{where}: %{{text}}<extra></extra>",
            "colorscale": _colour_scale(), "zmin": 0, "zmax": len(CELL_COLOURS), "showscale": False,
            "xgap": 2, "ygap": 2,
        })
        annotations.append({"x": left + (width - 1) / 2, "y": -0.6, "text": f"<b>{panel.title}</b>",
                            "showarrow": False, "yanchor": "bottom", "font": {"size": 13}})
        shapes += [{"type": "rect", "x0": left + box_left - 0.5, "x1": left + box_left + box_width - 0.5,
                    "y0": top - 0.5, "y1": top + box_height - 0.5, "line": {"color": colour, "width": 3}}
                   for top, box_left, box_height, box_width, colour in panel.boxes]
        if index < len(joiners):  # level with the middle of the shorter neighbour
            beside = min(height, panels[index + 1].values.shape[0])
            annotations.append({"x": left + width - 0.5 + gap / 2, "y": (beside - 1) / 2, "text": joiners[index],
                                "showarrow": False, "font": {"size": 22}})
        left += width + gap
    layout = {
        "xaxis": {"visible": False, "range": [-0.6, total_columns - 0.4], "constrain": "domain"},
        "yaxis": {"visible": False, "autorange": False, "range": [rows - 0.4, -1.6], "scaleanchor": "x",
                  "constrain": "domain"},
        "annotations": annotations, "shapes": shapes, "height": int(cell * (rows + 1.2)) + 20,
        "margin": {"l": 0, "r": 0, "t": 4, "b": 4}, "plot_bgcolor": "white", "dragmode": False,
    }
    return go.Figure({"data": traces, "layout": layout}, skip_invalid=False, _validate=False)


def overlap_figure(counts: np.ndarray, interior_cut: int, labels: dict[str, str]) -> go.Figure:
    """How many kernel cells land on each output cell of a transposed convolution (numbers on a
    heat map), with a dashed box around the interior, away from the edges. ``labels``: "cell" (the
    hover's "row {row}, column {column}"), "count" (the colour bar's title)."""
    size = counts.shape[0]
    figure = go.Figure(go.Heatmap(
        z=counts, text=counts, texttemplate="%{text}", colorscale="Blues", xgap=1, ygap=1,
        colorbar={"title": {"text": labels["count"]}, "thickness": 12},
        customdata=[[labels["cell"].format(row=r, column=c) for c in range(size)] for r in range(size)],
        hovertemplate="%{customdata}: %{z}<extra></extra>",
    ))
    if size > 2 * interior_cut:
        figure.add_shape(type="rect", x0=interior_cut - 0.5, x1=size - interior_cut - 0.5, y0=interior_cut - 0.5,
                         y1=size - interior_cut - 0.5, line={"color": "#d32f2f", "width": 3, "dash": "dash"})
    figure.update_xaxes(visible=False, constrain="domain")
    figure.update_yaxes(visible=False, autorange="reversed", scaleanchor="x", constrain="domain")
    figure.update_layout(height=min(460, 60 + 24 * size), margin={"l": 0, "r": 0, "t": 4, "b": 4}, dragmode=False)
    return figure


def fit_figure(losses: list[float], step: int, least_squares: float, labels: dict[str, str]) -> go.Figure:
    """The spreadsheet fit's L1 error step by step, drawn up to ``step``, against the whole run's axes
    (so the curve grows into a fixed frame), with the least-squares filter's error as a dashed line.
    ``labels``: "step", "error", "fit", "least_squares"."""
    figure = go.Figure()
    figure.add_trace(go.Scatter(x=list(range(step + 1)), y=losses[:step + 1], mode="lines", name=labels["fit"],
                                line={"color": PALETTE[0], "width": 2}))
    figure.add_trace(go.Scatter(x=[step], y=[losses[step]], mode="markers", showlegend=False,
                                marker={"color": PALETTE[0], "size": 9}, hoverinfo="skip"))
    figure.add_trace(go.Scatter(x=[0, len(losses) - 1], y=[least_squares] * 2, mode="lines",
                                name=labels["least_squares"], line={"color": PALETTE[1], "dash": "dash"}))
    figure.update_xaxes(title_text=labels["step"], range=[0, len(losses) - 1])
    figure.update_yaxes(title_text=labels["error"], type="log",
                        range=[np.log10(min(min(losses), least_squares) * 0.8), np.log10(max(losses) * 1.2)])
    figure.update_layout(height=300, margin={"l": 10, "r": 10, "t": 10, "b": 10},
                         legend={"orientation": "h", "y": 1.02, "yanchor": "bottom"})
    return figure


# ----- the lab's pictures as panels ---------------------------------------------------------------------
def window_figure(x: np.ndarray, w: np.ndarray, s: ConvSettings, current: int, labels: dict[str, str]) -> go.Figure:
    """The padded input with the cells that feed output cell ``current`` (row by row) lit and boxed, the
    kernel, and the output filled in up to that cell. ``labels``: "input", "padded_input", "kernel",
    "output", "cell"."""
    size = s.conv_size()
    row, col = divmod(current, size)
    grid = padded(x, s.padding)
    kinds = np.full(grid.shape, PADDING)
    kinds[s.padding:s.padding + s.n, s.padding:s.padding + s.n] = VALUE
    for r, c, _, _ in window(row, col, s):
        kinds[r, c] = FEEDS
    span = effective_kernel(s.kernel, s.dilation)
    output = conv2d(x, w, s)
    order = np.arange(size * size).reshape(size, size)
    out_kinds = np.where(order < current, DONE, np.where(order == current, CURRENT, PENDING))
    return grids_figure([
        Panel(labels["padded_input" if s.padding else "input"], grid, kinds,
              [(row * s.stride, col * s.stride, span, span, "#e65100")]),
        Panel(labels["kernel"], w, np.full(w.shape, KERNEL)),
        Panel(labels["output"], np.where(order <= current, output, np.nan), out_kinds),
    ], ["∗", "="], labels)


def stamps_figure(x: np.ndarray, w: np.ndarray, s: ConvSettings, upto: int, labels: dict[str, str]) -> go.Figure:
    """Way (a) after ``upto`` stamps: the input with the stamping cell lit, the kernel, the canvas
    (cells no stamp reached yet blank, the last stamp lit, the padding to be cut off grey, the output
    boxed in green) and the output so far. ``labels``: "input", "kernel", "canvas", "output", "cell"."""
    result = stamped(x, w, s, upto)
    reached = stamped(np.ones_like(x), np.ones_like(w), s, upto).canvas > 0
    order = np.arange(s.n * s.n).reshape(s.n, s.n)
    in_kinds = np.where(order < upto - 1, DONE, np.where(order == upto - 1, CURRENT, VALUE))
    size = s.transpose_size()
    kinds = np.full(result.canvas.shape, PADDING)
    kinds[s.padding:s.padding + size, s.padding:s.padding + size] = VALUE
    span = effective_kernel(s.kernel, s.dilation)
    top, left = stamp_origin(*divmod(upto - 1, s.n), s)
    kinds[top:top + span:s.dilation, left:left + span:s.dilation] = FEEDS
    output_reached = reached[s.padding:s.padding + size, s.padding:s.padding + size]
    return grids_figure([
        Panel(labels["input"], x, in_kinds),
        Panel(labels["kernel"], w, np.full(w.shape, KERNEL)),
        Panel(labels["canvas"], np.where(reached, result.canvas, np.nan), kinds,
              [(s.padding, s.padding, size, size, "#2e7d32")]),
        Panel(labels["output"], np.where(output_reached, result.output, np.nan),
              np.where(output_reached, DONE, PENDING)),
    ], ["∗", "→", "✂"], labels)


def zero_insertion_figure(x: np.ndarray, w: np.ndarray, s: ConvSettings, labels: dict[str, str]) -> go.Figure:
    """Way (b): the input spread out with inserted zeros (blank yellow cells) and padded (blank grey
    cells), the flipped kernel, and the ordinary convolution's output. ``labels``: "spread", "flipped",
    "output", "cell"."""
    result = zero_inserted(x, w, s)
    kinds = np.choose(result.kind, [VALUE, INSERTED, PADDING])
    zeros_blank = np.where(result.kind == 0, result.grid, np.nan)  # their colour says zero; the input stands out
    return grids_figure([
        Panel(labels["spread"], zeros_blank, kinds),
        Panel(labels["flipped"], result.flipped, np.full(w.shape, KERNEL)),
        Panel(labels["output"], result.output, np.full(result.output.shape, DONE)),
    ], ["∗", "="], labels)


def sheet_figure(fit: SheetFit, x: np.ndarray, step: int, labels: dict[str, str]) -> go.Figure:
    """The spreadsheet's way back at ``step`` of the fit: the 2×2 padded by 2, the filter fitted so far,
    its reconstruction and the original 4×4. ``labels``: "padded", "filter", "rebuilt", "original", "cell"."""
    kinds = np.full(fit.padded.shape, PADDING)
    kinds[2:4, 2:4] = VALUE
    return grids_figure([
        Panel(labels["padded"], fit.padded, kinds),
        Panel(labels["filter"], fit.filters[step], np.full((3, 3), KERNEL), decimals=2),
        Panel(labels["rebuilt"], fit.reconstructions[step], np.full((4, 4), DONE), decimals=1),
        Panel(labels["original"], x, np.full((4, 4), VALUE)),
    ], ["∗", "=", "≈"], labels)
