"""Figures and digit grids: titled axes, and a PNG a student can read."""
from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from core.viz import RIGHT, WRONG, confusion_figure, digit_grid_png, training_figure

LABELS = {
    "loss": "Loss", "accuracy": "Accuracy", "lr": "Learning rate", "momentum": "Momentum",
    "train": "train", "valid": "valid", "loss_axis": "loss", "accuracy_axis": "accuracy (%)",
    "lr_axis": "learning rate", "momentum_axis": "momentum", "iteration": "iteration",
}


def run_frame(steps: int = 20, validate_every: int = 5) -> pd.DataFrame:
    rows = []
    for step in range(1, steps + 1):
        row = {"step": step, "train_loss": 2.3 / step, "lr": 0.1 * step / steps, "momentum": 0.95 - 0.005 * step}
        if step % validate_every == 0:
            row.update(valid_loss=2.0 / step, accuracy=min(1.0, step / steps))
        rows.append(row)
    return pd.DataFrame(rows)


def axis_titles(figure) -> list[str]:
    """The title a reader sees for each axis; an axis that ``matches`` another one (shared x of
    stacked panels) is read off the titled axis it is tied to."""
    layout = figure.layout
    titles = []
    for axis in list(figure.select_xaxes()) + list(figure.select_yaxes()):
        text = axis.title.text
        if not text and axis.matches:
            kind = "xaxis" if axis.plotly_name.startswith("xaxis") else "yaxis"
            text = layout[kind + axis.matches[1:]].title.text
        titles.append(text)
    return titles


def test_training_figure_titles_every_axis_and_panel():
    figure = training_figure([("run A", run_frame()), ("run B", run_frame(10))], LABELS)
    titles = axis_titles(figure)
    assert len(titles) == 8  # 2x2 panels, x and y each
    assert all(isinstance(t, str) and t.strip() for t in titles), titles
    assert [a.title.text for a in figure.select_yaxes()] == ["loss", "accuracy (%)", "learning rate", "momentum"]
    assert "iteration" in titles
    assert {a.text for a in figure.layout.annotations} == {"Loss", "Accuracy", "Learning rate", "Momentum"}
    # one legend entry per run and curve on the loss panel, not one per panel
    assert sorted(t.name for t in figure.data if t.showlegend) == [
        "run A · train", "run A · valid", "run B · train", "run B · valid"]


def test_training_figure_shows_accuracy_in_percent_at_validation_steps():
    figure = training_figure([("run A", run_frame(20, 5))], LABELS)
    accuracy = next(t for t in figure.data if t.xaxis == "x2")
    assert list(accuracy.x) == [5, 10, 15, 20]
    assert list(accuracy.y) == pytest.approx([25, 50, 75, 100])


def test_training_figure_copes_with_a_run_not_yet_validated():
    frame = run_frame(3, validate_every=100).drop(columns=[], errors="ignore")
    assert "accuracy" not in frame
    figure = training_figure([("new", frame)], LABELS)
    assert all(t.strip() for t in axis_titles(figure))


def test_confusion_figure_titles_both_axes_and_writes_the_counts():
    matrix = np.diag([980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]).tolist()
    figure = confusion_figure(matrix, {"predicted": "predicted", "actual": "actual", "hover": "%{z}"})
    titles = axis_titles(figure)
    assert titles and all(t.strip() for t in titles)
    assert figure.data[0].z[1][1] == 1135
    assert figure.data[0].texttemplate == "%{text}"
    assert figure.layout.yaxis.autorange == "reversed"  # 0 at the top, like a table


def png_image(data: bytes) -> Image.Image:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return Image.open(io.BytesIO(data)).convert("RGB")


def digits(n: int) -> torch.Tensor:
    torch.manual_seed(n)
    return torch.rand(n, 1, 28, 28)


def test_digit_grid_grows_with_the_number_of_digits():
    sizes = {}
    for n in (2, 4, 8, 24):
        labels = [i % 10 for i in range(n)]
        sizes[n] = png_image(digit_grid_png(digits(n), labels, labels, per_row=8)).size
    assert sizes[2][0] < sizes[4][0] < sizes[8][0] == sizes[24][0]  # up to 8 per row
    assert sizes[2][1] == sizes[8][1] < sizes[24][1]  # then more rows
    assert len(digit_grid_png(digits(24), [0] * 24, [0] * 24)) > len(digit_grid_png(digits(2), [0] * 2, [0] * 2))


def colour_count(picture: np.ndarray, colour) -> int:
    return int((picture == np.array(colour, dtype=picture.dtype)).all(axis=2).sum())


def test_digit_grid_frames_right_green_and_wrong_red():
    black = torch.zeros(2, 1, 28, 28)
    mixed = np.asarray(png_image(digit_grid_png(black, [3, 5], [3, 6])))
    right = np.asarray(png_image(digit_grid_png(black, [3, 5], [3, 5])))
    frame = 4 * (28 + 4) * 3  # the four sides of one frame, at scale 3
    assert colour_count(mixed, RIGHT) > 0.9 * frame and colour_count(mixed, WRONG) > 0.9 * frame
    assert colour_count(right, RIGHT) > 1.8 * frame and colour_count(right, WRONG) == 0


def first_frame(picture: np.ndarray, colour, side: int) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of the first digit's frame, found by its long straight edges."""
    mask = (picture == np.array(colour)).all(axis=2)
    rows = np.flatnonzero(mask.sum(axis=1) >= 0.9 * side)
    top = rows[0]
    bottom = rows[rows < top + side + 1][-1] + 1
    cols = np.flatnonzero(mask[top:bottom].sum(axis=0) >= 0.9 * side)
    left = cols[0]
    right = cols[cols < left + side + 1][-1] + 1
    return top, bottom, left, right


def test_digit_grid_captions_sit_below_each_digit():
    """Regression: captions were once drawn on the frame's bottom edge, in the frame's colour."""
    scale = 3
    side = (28 + 4) * scale
    picture = np.asarray(png_image(digit_grid_png(torch.zeros(2, 1, 28, 28), [7, 7], [7, 7], scale=scale))).astype(int)
    top, bottom, left, right = first_frame(picture, RIGHT, side)
    assert (bottom - top, right - left) == (side, side)
    inside = picture[top + 2 * scale:bottom - 2 * scale, left + 2 * scale:right - 2 * scale]
    assert (inside == 0).all(), "the caption covers the (black) digit"
    below = picture[bottom:, left:right]
    ink = (np.abs(below - 255).sum(axis=2) > 60).sum()
    assert ink > 20, "no caption in the space below the digit"


def test_digit_grid_of_one_digit_has_room_for_its_caption():
    picture = png_image(digit_grid_png(torch.zeros(1, 1, 28, 28), [7], [1], scale=3))
    assert picture.height > (28 + 4) * 3
