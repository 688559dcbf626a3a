"""Figures of the GAN lab (plotly, built from plain data like ``core.viz``); ``labels`` hold the page's translated
words."""
from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.viz import PALETTE, thinned

GAN_LABEL_KEYS = ("losses", "scores", "gradients", "judge", "loss_d", "loss_g", "d_real", "d_fake", "wasserstein",
                  "grad_norm_d", "grad_norm_g", "confidence", "classes", "step")
CYCLE_LABEL_KEYS = ("loss_gan", "loss_cycle", "loss_identity", "loss_d", "step", "loss", "title")


def _line(figure: go.Figure, frame: pd.DataFrame, column: str, name: str, row: int, col: int, colour: str,
          markers: bool = False) -> None:
    if column not in frame or frame[column].isna().all():
        return
    points = frame.dropna(subset=[column])
    figure.add_trace(go.Scatter(x=points["step"], y=points[column], name=name, mode="lines+markers" if markers
                                else "lines", line={"color": colour, "width": 1.5}, marker={"size": 5}),
                     row=row, col=col)


def gan_figure(frame: pd.DataFrame, loss: str, labels: dict[str, str]) -> go.Figure:
    """Four panels against the generator's steps: both losses; what the discriminator says of real and fake
    pictures (DCGAN) or the critic's Wasserstein estimate (WGAN); both gradient norms (log scale); and the
    classifier's verdict of the fixed samples. ``labels``: the panel titles ("losses", "scores",
    "gradients", "judge"), the line names ("loss_d", "loss_g", "d_real", "d_fake", "wasserstein",
    "grad_norm_d", "grad_norm_g", "confidence", "classes") and "step"."""
    frame = thinned(frame)
    figure = make_subplots(rows=2, cols=2, shared_xaxes=True, vertical_spacing=0.14, horizontal_spacing=0.1,
                           subplot_titles=[labels[key] for key in ("losses", "scores", "gradients", "judge")])
    _line(figure, frame, "loss_d", labels["loss_d"], 1, 1, PALETTE[0])
    _line(figure, frame, "loss_g", labels["loss_g"], 1, 1, PALETTE[1])
    if loss == "wgan":
        _line(figure, frame, "wasserstein", labels["wasserstein"], 1, 2, PALETTE[2])
    else:
        _line(figure, frame, "d_real", labels["d_real"], 1, 2, PALETTE[2])
        _line(figure, frame, "d_fake", labels["d_fake"], 1, 2, PALETTE[3])
        figure.update_yaxes(range=[-0.02, 1.02], row=1, col=2)
    _line(figure, frame, "grad_norm_d", labels["grad_norm_d"], 2, 1, PALETTE[0])
    _line(figure, frame, "grad_norm_g", labels["grad_norm_g"], 2, 1, PALETTE[1])
    figure.update_yaxes(type="log", dtick=1, row=2, col=1)  # one tick per power of ten: no unlabelled 2s and 5s
    if "confidence" in frame:
        frame = frame.assign(classes_share=frame.get("classes_present") / 10)
    _line(figure, frame, "confidence", labels["confidence"], 2, 2, PALETTE[4], markers=True)
    _line(figure, frame, "classes_share", labels["classes"], 2, 2, PALETTE[5], markers=True)
    figure.update_yaxes(range=[0, 1.05], tickformat=".0%", row=2, col=2)
    figure.update_xaxes(title_text=labels["step"], row=2)
    figure.update_layout(height=560, margin={"l": 10, "r": 10, "t": 40, "b": 10},
                         legend={"orientation": "h", "yanchor": "bottom", "y": -0.25, "x": 0})
    return figure


def cyclegan_figure(frame: pd.DataFrame, labels: dict[str, str]) -> go.Figure:
    """CycleGAN's four losses against the step (both directions summed). ``labels``: "loss_gan",
    "loss_cycle", "loss_identity", "loss_d", "step", "loss" and "title"."""
    frame = thinned(frame)
    figure = go.Figure(layout={"title": {"text": labels["title"], "font": {"size": 14}}})
    for colour, column in zip(PALETTE, ("loss_gan", "loss_cycle", "loss_identity", "loss_d")):
        if column in frame:
            figure.add_trace(go.Scatter(x=frame["step"], y=frame[column], name=labels[column], mode="lines",
                                        line={"color": colour, "width": 1.5}))
    figure.update_layout(height=360, margin={"l": 10, "r": 10, "t": 40, "b": 10}, xaxis_title=labels["step"],
                         yaxis_title=labels["loss"], legend={"orientation": "h", "y": -0.3, "x": 0})
    return figure
