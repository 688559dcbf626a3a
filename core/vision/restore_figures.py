"""Figures of the restoration lab (plotly, from plain data like ``core.viz``); ``labels`` hold the page's
translated words."""
from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.viz import PALETTE, thinned

STAGE_COLOURS = {"mse": PALETTE[0], "feature": PALETTE[1], "gan": PALETTE[2]}
# (column, stage it belongs to, dash): what the loss chart draws when the run has it
LOSS_LINES = (("loss", "mse", None), ("loss", "feature", None), ("pixel", "feature", "dot"),
              ("features", "feature", "dash"), ("gram", "feature", "dashdot"), ("generator", "gan", None),
              ("critic", "gan", "dot"))
LOSS_LABEL_KEYS = ("loss", "pixel", "features", "gram", "generator", "critic", "step", "loss_axis", "mse",
                   "feature", "gan")
QUALITY_LABEL_KEYS = ("psnr", "ssim", "bicubic", "step", "mse", "feature", "gan")
LAYOUT = {"margin": {"l": 10, "r": 10, "t": 30, "b": 10}, "legend": {"orientation": "h", "y": -0.2}}


def stage_spans(frame: pd.DataFrame) -> list[tuple[str, float, float]]:
    """(stage, first step, last step) of each stage the run has reached."""
    rows = frame[frame["stage"].isin(tuple(STAGE_COLOURS))]
    return [(stage, group["step"].min(), group["step"].max()) for stage, group in rows.groupby("stage", sort=False)]


def shade_stages(figure: go.Figure, frame: pd.DataFrame, labels: dict[str, str], rows: int = 1) -> None:
    for stage, first, last in stage_spans(frame):
        for row in range(1, rows + 1):
            figure.add_vrect(x0=first - 0.5, x1=last + 0.5, fillcolor=STAGE_COLOURS[stage], opacity=0.07,
                             line_width=0, row=row if rows > 1 else None, col=1 if rows > 1 else None,
                             annotation_text=labels[stage] if row == 1 else None, annotation_position="top left")


def losses_figure(frame: pd.DataFrame, labels: dict[str, str]) -> go.Figure:
    """Each stage's loss against the run's steps, on a log axis (the stages' losses differ by powers of ten):
    MSE, the feature loss and its three parts, the generator's and the critic's."""
    figure = go.Figure()
    frame = frame[frame["stage"].isin(tuple(STAGE_COLOURS))]
    if frame.empty:
        return figure
    for column, stage, dash in LOSS_LINES:
        part = thinned(frame[frame["stage"] == stage])
        if column in part and not part[column].isna().all():
            name = labels[column] if column != "loss" else f"{labels['loss']} ({labels[stage]})"
            points = part[column].notna().sum()  # a lone point (one generator step) draws no line: a marker
            figure.add_trace(go.Scatter(x=part["step"], y=part[column], name=name,
                                        mode="lines+markers" if points < 20 else "lines", marker={"size": 5},
                                        connectgaps=True, line={"color": STAGE_COLOURS[stage], "dash": dash,
                                                                "width": 2 if dash is None else 1.5}))
    shade_stages(figure, frame, labels)
    figure.update_yaxes(type="log", title_text=labels["loss_axis"])
    figure.update_xaxes(title_text=labels["step"])
    figure.update_layout(height=360, **LAYOUT)
    return figure


def quality_figure(frame: pd.DataFrame, labels: dict[str, str]) -> go.Figure:
    """PSNR (dB) and SSIM on the held-out crops at each check, coloured by stage, with the bicubic upsampling's
    as a dashed line: above it, the U-Net restores better than the naive way."""
    figure = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08)
    checks = frame.dropna(subset=["psnr"]) if "psnr" in frame else frame.iloc[0:0]
    baseline = checks[checks["stage"] == "bicubic"]
    last_step = max(1, frame["step"].max()) if not frame.empty else 1
    for row, column in ((1, "psnr"), (2, "ssim")):
        if not baseline.empty:  # a trace, not a shape: the axis range then always reaches it
            figure.add_trace(go.Scatter(x=[0, last_step], y=[baseline[column].iloc[0]] * 2, mode="lines",
                                        name=labels["bicubic"], line={"color": "grey", "dash": "dash"},
                                        showlegend=row == 1, legendgroup="bicubic"), row=row, col=1)
        for stage, colour in STAGE_COLOURS.items():
            part = checks[checks["stage"] == stage]
            if not part.empty:
                figure.add_trace(go.Scatter(x=part["step"], y=part[column], mode="lines+markers", name=labels[stage],
                                            line={"color": colour}, showlegend=row == 1, legendgroup=stage), row=row,
                                 col=1)
        figure.update_yaxes(title_text=labels[column], row=row, col=1)
    figure.update_xaxes(title_text=labels["step"], row=2, col=1)
    figure.update_layout(height=380, **LAYOUT)
    return figure


def stage_table(result: dict, labels: dict[str, str]) -> pd.DataFrame:
    """PSNR and SSIM of the bicubic upsampling and after each stage the run went through."""
    rows = [(labels["bicubic"], result["bicubic"])]
    rows += [(labels[stage], values) for stage, values in result.get("stages", {}).items()]
    return pd.DataFrame([{labels["stage"]: name, labels["psnr"]: round(v["psnr"], 2),
                          labels["ssim"]: round(v["ssim"], 3)} for name, v in rows])


def unet_figure(table: pd.DataFrame, labels: dict[str, str]) -> go.Figure:
    """The U: the input and the encoder stages down the left, the decoder up the right to the output at the same
    heights (one height per resolution), a dotted line for each skip connection; each box names its part and its
    output's shape. ``table``: restore.architecture_table's rows with ``part`` (a name), ``side`` (input,
    encoder, middle, decoder, output) and ``skip_from`` (a part's name, or empty)."""
    figure = go.Figure()
    levels = {size: level for level, size in enumerate(sorted(table["height"].unique(), reverse=True))}
    positions = []
    decoder_column = 0
    for _, row in table.iterrows():
        y = -levels[row["height"]]
        if row["side"] in ("input", "encoder"):
            x = levels[row["height"]] * 0.6
        elif row["side"] == "middle":
            x = levels[row["height"]] * 0.6 + 1
        else:  # the parts at the input's size sit side by side: wider apart, for their names
            decoder_column += 1
            x = (len(levels) - 1) * 0.6 + 1 + decoder_column * 0.6 + max(0, decoder_column - len(levels) + 1) * 0.5
        positions.append((x, y))
        colour = {"encoder": PALETTE[0], "middle": PALETTE[3], "decoder": PALETTE[1], "input": "grey",
                  "output": "grey"}[row["side"]]
        figure.add_trace(go.Scatter(x=[x], y=[y], mode="markers+text", marker={"size": 18 + row["channels"] ** 0.5,
                                    "color": colour, "symbol": "square"}, text=[f"{row['part']}<br>{row['shape']}"],
                                    textposition="top center" if row["side"] in ("decoder", "output") and y == 0
                                    else "bottom center", hoverinfo="text", showlegend=False,
                                    hovertext=f"{row['part']}: {row['shape']}, {row['params']:,} {labels['params']}"))
    xs, ys = zip(*positions)
    figure.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line={"color": "lightgrey"}, showlegend=False,
                                hoverinfo="skip"))
    by_part = dict(zip(table["part"], positions))
    skips = [(by_part[source], position) for source, position in zip(table["skip_from"], positions)
             if source in by_part]
    for number, ((x0, y0), (x1, y1)) in enumerate(skips):
        figure.add_trace(go.Scatter(x=[x0, x1], y=[y0, y1], mode="lines", line={"dash": "dot", "color": PALETTE[2]},
                                    name=labels["skip"], showlegend=number == 0, hoverinfo="skip"))
    figure.update_xaxes(visible=False)
    figure.update_yaxes(visible=False, range=[-len(levels) + 0.3, 0.6])
    figure.update_layout(height=120 * len(levels) + 60, margin={"l": 10, "r": 10, "t": 10, "b": 10},
                         legend={"orientation": "h", "y": 1.05})
    return figure
