"""Figures of the style lab (plotly, from plain data like ``core.viz``); ``labels`` hold the page's translated words."""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import torch
from PIL import Image
from torchvision.utils import make_grid

from core.viz import PALETTE, png_bytes, thinned

LOSS_LABEL_KEYS = ("total", "content", "style", "evaluation", "loss_axis")
STYLE_COLOURS = ("#c6dbef", "#9ecae1", "#6baed6", "#3182bd", "#08519c")  # light = early block, dark = late


def losses_figure(frame: pd.DataFrame, labels: dict[str, str]) -> go.Figure:
    """The total, the content term and each layer's style term against the loss evaluations, on a log axis
    (they span several powers of ten). ``labels``: "total", "content", "style" (with {layer}), "evaluation",
    "loss_axis"."""
    frame = thinned(frame)
    figure = go.Figure()
    terms = [column for column in frame.columns if column == "content" or column.startswith("style_")]
    lines = [("total", labels["total"], PALETTE[0], 3)] if len(terms) > 1 else []  # one term: it is the total
    lines += [("content", labels["content"], PALETTE[1], 2)]
    lines += [(f"style_{i}", labels["style"].format(layer=i), STYLE_COLOURS[i - 1], 1.5) for i in range(1, 6)]
    for column, name, colour, width in lines:
        if column in frame and not frame[column].isna().all():
            figure.add_trace(go.Scatter(x=frame["step"], y=frame[column], name=name, mode="lines",
                                        line={"color": colour, "width": width}))
    figure.update_yaxes(type="log", dtick=1, title_text=labels["loss_axis"])
    figure.update_xaxes(title_text=labels["evaluation"])
    figure.update_layout(height=380, margin={"l": 10, "r": 10, "t": 10, "b": 10},
                         legend={"orientation": "v", "yanchor": "top", "y": 1, "x": 1.02})
    return figure


def gram_heatmap(gram: np.ndarray, labels: dict[str, str], height: int = 420) -> go.Figure:
    """A C × C Gram matrix as a heat map, channel i down and channel j across. The colours stop at the 1st and
    99th percentiles: a few very active channels would otherwise paint everything else one colour. ``labels``:
    "channel", "value"."""
    channels = np.arange(1, gram.shape[0] + 1)
    low, high = np.percentile(gram, [1, 99])
    figure = go.Figure(go.Heatmap(z=gram, x=channels, y=channels, colorscale="Viridis", zmin=low, zmax=high,
                                  colorbar={"title": {"text": labels["value"]}, "tickformat": ".1e"},
                                  hovertemplate="i=%{y}, j=%{x}: %{z:.3g}<extra></extra>"))
    figure.update_yaxes(autorange="reversed", title_text=labels["channel"] + " i", scaleanchor="x")
    figure.update_xaxes(title_text=labels["channel"] + " j")
    figure.update_layout(height=height, margin={"l": 10, "r": 10, "t": 10, "b": 10})
    return figure


def per_layer_bars(series: dict[str, list[float]], layer_names: list[str], labels: dict[str, str],
                   percent: bool = False) -> go.Figure:
    """Grouped bars, one group per block end, each bar labelled with its value: each of ``series`` (name → one
    value per layer). ``labels``: "layer", "axis"."""
    figure = go.Figure()
    value_format = ".0%" if percent else ".2f"
    for (name, values), colour in zip(series.items(), PALETTE):
        figure.add_trace(go.Bar(x=layer_names, y=values, name=name, marker_color=colour,
                                texttemplate=f"%{{y:{value_format}}}", textposition="outside",
                                hovertemplate=f"%{{x}}: %{{y:{value_format}}}<extra>{name}</extra>"))
    figure.update_yaxes(title_text=labels["axis"], rangemode="tozero", tickformat=".0%" if percent else None)
    figure.update_xaxes(title_text=labels["layer"])
    figure.update_layout(barmode="group", height=360, margin={"l": 10, "r": 10, "t": 30, "b": 10},
                         uniformtext={"minsize": 9, "mode": "show"},
                         legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0})
    return figure


def feature_maps_png(features: torch.Tensor, channels: int = 8, side: int = 128) -> bytes:
    """The first ``channels`` feature maps of one picture's (C, H, W) activations, each stretched to its own
    range (bright = fires strongly) and enlarged to ``side`` px, in a row."""
    maps = features[:channels].detach().float().cpu()
    low = maps.amin(dim=(1, 2), keepdim=True)
    high = maps.amax(dim=(1, 2), keepdim=True)
    maps = ((maps - low) / (high - low).clamp_min(1e-8)).unsqueeze(1)
    maps = torch.nn.functional.interpolate(maps, size=(side, side), mode="nearest")
    grid = make_grid(maps, nrow=channels, padding=4, pad_value=1.0)
    return png_bytes(Image.fromarray((grid[0] * 255).round().byte().numpy()))
