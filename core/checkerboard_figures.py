"""Figures of the checkerboard lab (plotly, built from plain data like ``core.viz``); ``labels`` hold the page's
translated words."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.viz import PALETTE


def outputs_and_spectra_figure(outputs: dict[str, np.ndarray], spectra: dict[str, np.ndarray],
                               names: dict[str, str], labels: dict[str, str]) -> go.Figure:
    """One column per upsampler: its (H, W) output in grey above its spectrum (log10 power, frequency 0 in the
    middle). Each row shares one colour scale, so that the columns compare at a glance.
    ``labels``: "x", "y" (the output's axes) and "frequency" (the spectrum's)."""
    upsamplers = list(outputs)
    figure = make_subplots(rows=2, cols=len(upsamplers), subplot_titles=[names.get(u, u) for u in upsamplers],
                           horizontal_spacing=0.02, vertical_spacing=0.08)
    pixel_range = _range(outputs.values())
    power_range = _range(spectra.values())
    for column, upsampler in enumerate(upsamplers, start=1):
        figure.add_trace(go.Heatmap(
            z=outputs[upsampler], zmin=pixel_range[0], zmax=pixel_range[1], colorscale="gray",
            showscale=column == len(upsamplers), colorbar={"len": 0.45, "y": 0.78, "thickness": 10},
            hovertemplate=f"{labels['x']} %{{x}}, {labels['y']} %{{y}}: %{{z:.3f}}<extra></extra>",
        ), row=1, col=column)
        height, width = spectra[upsampler].shape
        figure.add_trace(go.Heatmap(
            z=spectra[upsampler], x=np.arange(width) - width // 2, y=np.arange(height) - height // 2,
            zmin=power_range[0], zmax=power_range[1], colorscale="Viridis",
            showscale=column == len(upsamplers), colorbar={"len": 0.45, "y": 0.22, "thickness": 10},
            hovertemplate=f"{labels['frequency']} (%{{x}}, %{{y}}): %{{z:.2f}}<extra></extra>",
        ), row=2, col=column)
        for row in (1, 2):  # square pixels: each y axis keeps the scale of its own x axis
            figure.update_yaxes(scaleanchor=figure.get_subplot(row, column).yaxis.anchor, row=row, col=column)
    figure.update_xaxes(showticklabels=False, showgrid=False, zeroline=False)
    figure.update_yaxes(showticklabels=False, showgrid=False, zeroline=False, autorange="reversed",
                        constrain="domain")
    figure.update_yaxes(title_text=labels["y"], row=1, col=1)
    figure.update_yaxes(title_text=labels["frequency"], row=2, col=1)
    figure.update_layout(height=420, margin={"l": 10, "r": 10, "t": 40, "b": 10})
    return figure


def _range(arrays) -> tuple[float, float]:
    """The smallest and largest value over all the arrays: one colour scale for a whole row."""
    values = [np.asarray(array, dtype=float) for array in arrays]
    return float(min(v.min() for v in values)), float(max(v.max() for v in values))


def losses_figure(frame: pd.DataFrame, names: dict[str, str], labels: dict[str, str]) -> go.Figure:
    """Each upsampler's training loss (the frame's ``loss_<upsampler>`` columns) against the step, on a log
    scale: the curves lie close together, and their differences are ratios. ``labels``: "step" and "loss"."""
    figure = go.Figure()
    for i, column in enumerate(c for c in frame.columns if c.startswith("loss_")):
        upsampler = column.removeprefix("loss_")
        figure.add_trace(go.Scatter(x=frame["step"], y=frame[column], name=names.get(upsampler, upsampler),
                                    mode="lines", line={"color": PALETTE[i % len(PALETTE)], "width": 2}))
    figure.update_xaxes(title_text=labels["step"])
    # ticks at 1, 2, 4, 8 × a power of ten, each written in full (plotly's own log ticks write 0.2 as "2")
    figure.update_yaxes(title_text=labels["loss"], type="log", dtick=math.log10(2), tickformat=".2g")
    figure.update_layout(height=320, margin={"l": 10, "r": 10, "t": 30, "b": 10},
                         legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0})
    return figure
