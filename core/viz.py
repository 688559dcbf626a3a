"""Figures (plotly) and image grids (torchvision's make_grid), built from plain data."""
from __future__ import annotations

import copy
import functools
import io
import math
from typing import Sequence

import pandas as pd
import plotly.graph_objects as go
import torch
from PIL import Image, ImageDraw, ImageFont
from plotly.subplots import make_subplots
from torchvision.utils import make_grid

RIGHT, WRONG = (46, 160, 67), (218, 54, 51)  # green and red frames around each digit
MAX_LINE_POINTS = 1000
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2")


def digit_grid_png(images: torch.Tensor, labels: Sequence, predicted: Sequence,
                   per_row: int = 6, scale: int = 3, show_truth: bool = True) -> bytes:
    """A PNG of pictures (N, 1 or 3, H, W) in [0, 1], each framed green (right) or red (wrong)
    and captioned with its predicted label, and the true one where the model was wrong (unless
    ``show_truth`` is off: long class names would run into the neighbours)."""
    framed = []
    for image, truth, guess in zip(images, labels, predicted):
        colour = torch.tensor(RIGHT if truth == guess else WRONG, dtype=torch.float32).view(3, 1, 1) / 255
        rgb = image.expand(3, -1, -1)
        frame = colour.expand(3, rgb.shape[1] + 4, rgb.shape[2] + 4).clone()
        frame[:, 2:-2, 2:-2] = rgb
        framed.append(frame)
    padding = 20  # room under each digit for its caption
    grid = make_grid(framed, nrow=per_row, padding=padding, pad_value=1.0)
    if len(framed) == 1:  # make_grid returns a lone image unpadded: give it the same margins
        grid = torch.nn.functional.pad(grid, [padding] * 4, value=1.0)
    picture = enlarged(Image.fromarray(grid.mul(255).byte().permute(1, 2, 0).numpy()), scale)
    _caption_cells(picture, labels, predicted, per_row, side=framed[0].shape[-1], padding=padding, scale=scale,
                   show_truth=show_truth)
    return png_bytes(picture)


def tanh_grid_png(pictures: torch.Tensor, per_row: int, scale: int) -> bytes:
    """Pictures (N, 1 or 3, H, W) in [-1, 1], a tanh's range, as one PNG grid with grey between them, every
    pixel enlarged ``scale`` times. Grey pictures stay a one-channel PNG."""
    grid = make_grid(((pictures + 1) / 2).clamp(0, 1), nrow=per_row, padding=2, pad_value=0.5)
    pixels = grid.mul(255).round().byte()  # make_grid repeats a grey picture's channel three times
    pixels = pixels[0] if pictures.shape[1] == 1 else pixels.permute(1, 2, 0)
    return png_bytes(enlarged(Image.fromarray(pixels.numpy()), scale))


def enlarged(picture: Image.Image, scale: int) -> Image.Image:
    """``scale`` times larger by nearest neighbour: small pictures' pixels stay sharp squares."""
    return picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST)


def png_bytes(picture: Image.Image) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def _caption_cells(picture: Image.Image, labels, predicted, per_row: int, side: int, padding: int, scale: int,
                   show_truth: bool = True) -> None:
    """Write each digit's predicted label (and the true one when wrong) just under it."""
    draw = ImageDraw.Draw(picture)
    font = ImageFont.load_default(size=11 * scale)  # readable when the grid is shown a third of its size
    stride = side + padding  # make_grid puts ``padding`` before every cell and after the last
    for i, (truth, guess) in enumerate(zip(labels, predicted)):
        x = (padding + (i % per_row) * stride) * scale
        y = (padding + (i // per_row) * stride + side + 1) * scale
        text = f"{guess}" if truth == guess or not show_truth else f"{guess} ({truth})"  # no words: the page explains
        draw.text((x, y), text, fill=RIGHT if truth == guess else WRONG, font=font, anchor="lt")


def figure_on(layout: dict) -> go.Figure:
    """A figure on a layout that plotly validated once, when it was cached. Validating the same panels again cost
    ~25 ms of the server's one interpreter per redraw: with a class polling its live charts every second, most of
    the server's time. The traces added to it are still validated, each as it is built."""
    return go.Figure(layout=copy.deepcopy(layout), _validate=False)  # plotly's own flag, as its templates use


def _values(column):
    """A column as numpy: plotly reads a pandas Series through narwhals, several times slower per trace."""
    return column.to_numpy() if isinstance(column, pd.Series) else column


PANELS = {(1, 1): ("x", "y"), (1, 2): ("x2", "y2"), (2, 1): ("x3", "y3"), (2, 2): ("x4", "y4")}
TITLE_KEYS = ("loss", "accuracy", "lr", "momentum", "loss_axis", "accuracy_axis", "lr_axis",
              "momentum_axis", "iteration")


@functools.lru_cache(maxsize=8)
def _panel_layout(titles: tuple[str, ...]) -> dict:
    """The 2x2 grid with its titles, built once per language: make_subplots costs ~15 ms and
    the live chart is redrawn twice a second."""
    labels = dict(zip(TITLE_KEYS, titles))
    figure = make_subplots(
        rows=2, cols=2, shared_xaxes=True, vertical_spacing=0.14, horizontal_spacing=0.12,
        subplot_titles=(labels["loss"], labels["accuracy"], labels["lr"], labels["momentum"]),
    )
    for row, col, title in ((1, 1, labels["loss_axis"]), (1, 2, labels["accuracy_axis"]),
                            (2, 1, labels["lr_axis"]), (2, 2, labels["momentum_axis"])):
        figure.update_yaxes(title_text=title, row=row, col=col)
        figure.update_xaxes(title_text=labels["iteration"] if row == 2 else None, row=row, col=col,
                            showticklabels=True)
    figure.update_layout(height=620, margin=dict(l=10, r=10, t=40, b=10),
                         legend=dict(orientation="h", yanchor="bottom", y=-0.22, x=0))
    return figure.layout.to_plotly_json()


def training_figure(runs: Sequence[tuple[str, pd.DataFrame]], labels: dict[str, str]) -> go.Figure:
    """Loss, validation accuracy, learning rate and momentum against iterations, one colour per run.

    Each DataFrame has one row per step: step, train_loss, lr, momentum and, on the steps
    where validation ran, valid_loss and accuracy. ``labels`` holds the translated titles.
    """
    figure = figure_on(_panel_layout(tuple(labels[key] for key in TITLE_KEYS)))
    for i, (name, frame) in enumerate(runs):
        colour = PALETTE[i % len(PALETTE)]
        valid = frame.dropna(subset=["accuracy"]) if "accuracy" in frame else frame.iloc[0:0]
        frame = thinned(frame)
        traces = [
            ((1, 1), frame["step"], frame["train_loss"], f"{name} · {labels['train']}", dict(width=1)),
            ((1, 1), valid["step"], valid.get("valid_loss"), f"{name} · {labels['valid']}", dict(width=2, dash="dot")),
            ((1, 2), valid["step"], valid.get("accuracy", pd.Series(dtype=float)) * 100, name, dict(width=2)),
            ((2, 1), frame["step"], frame["lr"], name, dict(width=2)),
            ((2, 2), frame["step"], frame["momentum"], name, dict(width=2)),
        ]
        for panel, x, y, trace_name, line in traces:
            xaxis, yaxis = PANELS[panel]
            with_markers = line.get("dash") or panel == (1, 2)  # validation: few points, each one counts
            figure.add_trace(go.Scatter(
                x=_values(x), y=_values(y), name=trace_name, mode="lines+markers" if with_markers else "lines",
                line=dict(color=colour, **line), marker=dict(size=4), xaxis=xaxis, yaxis=yaxis,
                legendgroup=name, showlegend=panel == (1, 1),
            ))
    accuracies = [value for _, frame in runs if "accuracy" in frame for value in frame["accuracy"].dropna()]
    lowest = min(accuracies, default=0.0) * 100
    figure.layout.yaxis2.range = [max(0.0, lowest - 2), 100.5]  # 100% is the ceiling to look up to
    return figure


def thinned(frame: pd.DataFrame, most: int = MAX_LINE_POINTS) -> pd.DataFrame:
    """Every k-th step (and the last) of a long run: the browser need not draw 10,000 points."""
    stride = math.ceil(len(frame) / most)
    if stride <= 1:
        return frame
    return pd.concat([frame.iloc[::stride], frame.iloc[[-1]]]).drop_duplicates(subset="step")


def confusion_figure(matrix: Sequence[Sequence[int]], labels: dict[str, str]) -> go.Figure:
    """A 10x10 heatmap: rows the true digit, columns the predicted one, counts written in."""
    digits = [str(d) for d in range(len(matrix))]
    figure = go.Figure(go.Heatmap(
        z=matrix, x=digits, y=digits, colorscale="Blues", text=matrix, texttemplate="%{text}",
        hovertemplate=labels["hover"], showscale=False,
    ))
    figure.update_xaxes(title_text=labels["predicted"], side="bottom", type="category")
    figure.update_yaxes(title_text=labels["actual"], autorange="reversed", type="category")
    figure.update_layout(height=460, margin=dict(l=10, r=10, t=30, b=10))
    return figure


# ----- the learning-rate & momentum lab ----------------------------------------------------------
SCHEDULE_TITLE_KEYS = ("lr", "momentum", "loss", "iteration")
SCHEDULE_LABEL_KEYS = (*SCHEDULE_TITLE_KEYS, "plan", "loss_waiting")
PLAN_COLOUR = "#444444"


@functools.lru_cache(maxsize=32)
def _schedule_layout(titles: tuple[str, ...], boundaries: tuple[int, ...] = (),
                     phase_names: tuple[str, ...] = ()) -> dict:
    """Three panels stacked on one iteration axis: lr, momentum, loss, with a plan's phase marks when given
    (built once per language and plan: the page and its live chart draw the same plan again and again).
    Each panel is named by its y axis, which leaves the space above the top one to the phases' names."""
    labels = dict(zip(SCHEDULE_TITLE_KEYS, titles))
    figure = make_subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.05)
    for row, key in ((1, "lr"), (2, "momentum"), (3, "loss")):
        figure.update_yaxes(title_text=labels[key], row=row, col=1)
    figure.update_xaxes(title_text=labels["iteration"], row=3, col=1)
    figure.update_layout(height=700, margin=dict(l=10, r=10, t=40, b=10),
                         legend=dict(orientation="h", yanchor="top", y=-0.09, x=0))  # below the axis title, however many rows
    if boundaries:
        _phase_marks(figure, boundaries, phase_names)
        figure.update_xaxes(range=[0, boundaries[-1]])  # the iteration axis spans the plan, runs or not
    return figure.layout.to_plotly_json()


def thinned_plan(curves: pd.DataFrame, boundaries: Sequence[int], most: int = 2000) -> pd.DataFrame:
    """At most about ``most`` rows of a plan, always keeping each phase's first and last
    iteration, so that jumps between phases stay sharp however long the schedule is."""
    total = len(curves)
    if total <= most:
        return curves
    keep = set(range(0, total, math.ceil(total / most)))
    for boundary in boundaries[1:]:
        keep.update((boundary - 1, min(boundary, total - 1)))
    keep.update(boundaries[:-1])
    return curves.iloc[sorted(keep)]


def schedule_figure(plan: pd.DataFrame | None, boundaries: Sequence[int], phase_names: Sequence[str],
                    runs: Sequence[tuple[str, pd.DataFrame]], overlays: Sequence[tuple[str, pd.DataFrame]],
                    labels: dict[str, str], log_lr: bool = False) -> go.Figure:
    """The lesson's ``plot_lr``: the planned lr and momentum (dashed) with the phase boundaries
    and each phase's optimizer, torch's schedulers (dotted) for comparison, and what the
    optimizer really used in each run (solid), with the run's loss beneath on the same axis.

    ``plan`` has iteration, lr and momentum columns; each run's frame has step (1-based),
    lr, momentum and train_loss.
    """
    titles = tuple(labels[key] for key in SCHEDULE_TITLE_KEYS)
    if plan is None:
        figure = figure_on(_schedule_layout(titles))
    else:
        figure = figure_on(_schedule_layout(titles, tuple(boundaries), tuple(phase_names)))

    def line(x, y, name, row, colour, dash=None, width=2, legend=True, group=None):
        figure.add_trace(go.Scatter(x=_values(x), y=_values(y), name=name, mode="lines",
                                    line=dict(color=colour, dash=dash, width=width),
                                    xaxis="x" if row == 1 else f"x{row}", yaxis="y" if row == 1 else f"y{row}",
                                    legendgroup=group or name, showlegend=legend))

    if plan is not None:
        plan = thinned_plan(plan, boundaries)
        line(plan["iteration"], plan["lr"], labels["plan"], 1, PLAN_COLOUR, dash="dash")
        line(plan["iteration"], plan["momentum"], labels["plan"], 2, PLAN_COLOUR, dash="dash", legend=False)
    for i, (name, overlay) in enumerate(overlays):
        colour = PALETTE[-1 - i % len(PALETTE)]
        overlay = thinned(overlay.rename(columns={"iteration": "step"}), 2000)
        line(overlay["step"], overlay["lr"], name, 1, colour, dash="dot")
        line(overlay["step"], overlay["momentum"], name, 2, colour, dash="dot", legend=False)
    for i, (name, frame) in enumerate(runs):
        if frame.empty:
            continue
        colour = PALETTE[i % len(PALETTE)]
        frame = thinned(frame)
        x = frame["step"] - 1  # the step that used iteration i's lr is reported as step i + 1
        line(x, frame["lr"], name, 1, colour)
        line(x, frame["momentum"], name, 2, colour, legend=False)
        line(x, frame["train_loss"], name, 3, colour, width=1, legend=False)
    if log_lr:
        figure.layout.yaxis.type = "log"
    momenta = [frame["momentum"] for frame in [plan] + [f for _, f in (*overlays, *runs)] if frame is not None and len(frame)]
    if momenta:  # a constant momentum would otherwise fill the panel from 0 to 1.5
        low, high = min(m.min() for m in momenta), max(m.max() for m in momenta)
        pad = max(0.02, 0.1 * (high - low))
        figure.layout.yaxis2.range = [max(0.0, low - pad), min(1.0, high + pad)]
    if not any(len(frame) for _, frame in runs):  # an empty loss panel, its iteration axis still drawn
        figure.add_trace(go.Scatter(x=[0, boundaries[-1]], y=[None, None], xaxis="x3", yaxis="y3", showlegend=False,
                                    hoverinfo="skip"))
        figure.layout.yaxis3.showticklabels = False
        low, high = figure.layout.yaxis3.domain
        figure.add_annotation(x=0.5, y=(low + high) / 2, xref="paper", yref="paper", text=labels["loss_waiting"],
                              showarrow=False, font=dict(color="#888888"))
    return figure


def _phase_marks(figure: go.Figure, boundaries: Sequence[int], phase_names: Sequence[str]) -> None:
    """A vertical line at each boundary through all panels, and each phase's name on top (only
    its number where the phase is too narrow for the name; the name is then in the hover text)."""
    for boundary in boundaries[1:-1]:
        figure.add_shape(type="line", x0=boundary, x1=boundary, xref="x", y0=0, y1=1, yref="paper",
                         line=dict(color="#999999", width=1, dash="dot"))
    total = boundaries[-1] or 1
    for number, (start, stop, name) in enumerate(zip(boundaries, boundaries[1:], phase_names), start=1):
        share = (stop - start) / total
        if share < 0.04:
            continue  # a sliver (SGDR's warm-up): its boundary line says enough
        wide = share >= 0.12 * len(name) / 16
        figure.add_annotation(x=(start + stop) / 2, y=1.0, xref="x", yref="y domain", text=name if wide else str(number),
                              hovertext=name, showarrow=False, yanchor="bottom", font=dict(size=11, color="#555555"))


FINDER_LABEL_KEYS = ("raw", "smoothed", "suggestion", "steepest", "lr_axis", "loss_axis")


def lr_finder_figure(frame: pd.DataFrame, suggestion: float | None, steepest: float | None,
                     labels: dict[str, str], log_x: bool = True) -> go.Figure:
    """Loss against learning rate in the sweep: each batch's loss (thin) and the smoothed one
    (bold), with the suggested learning rate marked."""
    figure = go.Figure()
    figure.add_trace(go.Scatter(x=frame["lr"], y=frame["loss"], name=labels["raw"], mode="lines",
                                line=dict(color="#bbbbbb", width=1)))
    figure.add_trace(go.Scatter(x=frame["lr"], y=frame["smoothed"], name=labels["smoothed"], mode="lines",
                                line=dict(color=PALETTE[0], width=3)))
    for value, text, colour in ((suggestion, labels["suggestion"], PALETTE[2]), (steepest, labels["steepest"], PALETTE[1])):
        if value:  # a shape takes data units on a log axis; an annotation takes log10 of them
            figure.add_vline(x=value, line=dict(color=colour, dash="dash"))
            figure.add_annotation(x=math.log10(value) if log_x else value, y=1, yref="paper", text=f"{text}: {value:.2g}",
                                  showarrow=False, yanchor="bottom", font=dict(color=colour))
    smoothed = frame["smoothed"]
    if len(smoothed):  # the explosion at the end would squash the interesting part
        low = min(smoothed.min(), frame["loss"].min())
        high = min(max(smoothed.max(), frame["loss"].max()), smoothed.iloc[0] * 1.5)
        figure.update_yaxes(range=[low - 0.05 * (high - low), high + 0.05 * (high - low) + 1e-9])
    figure.update_xaxes(title_text=labels["lr_axis"], type="log" if log_x else "linear")
    figure.update_yaxes(title_text=labels["loss_axis"])
    figure.update_layout(height=420, margin=dict(l=10, r=10, t=40, b=10),
                         legend=dict(orientation="h", yanchor="bottom", y=-0.3, x=0))
    return figure
