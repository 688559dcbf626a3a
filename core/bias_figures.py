"""Figures of the bias lab (plotly, built from plain data like ``core.viz``); ``labels`` hold the page's
translated words, and group names (race, sex, age group, classifier) stay as the data spell them."""
from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.viz import PALETTE

RATE_KEYS = ("fpr", "fnr")
PUBLISHED_COLOUR = "#222222"


RACES = ("African-American", "Asian", "Caucasian", "Hispanic", "Native American", "Other")


def _colours(groups) -> dict[str, str]:
    """One colour per group, the same for a race in every chart (whichever races a chart shows)."""
    names = sorted(set(groups))
    return {group: PALETTE[(RACES.index(group) if group in RACES else i) % len(PALETTE)]
            for i, group in enumerate(names)}


def _layout(figure: go.Figure, height: int) -> go.Figure:
    figure.update_layout(height=height, margin=dict(l=10, r=10, t=60, b=10), legend=dict(orientation="h", y=-0.18),
                         barmode="group")
    return figure


def crosstab_figure(table: pd.DataFrame, rows: str, by: str, labels: dict[str, str]) -> go.Figure:
    """For each risk row (category or decile) and group: the share who reoffended within two years."""
    figure = go.Figure()
    for group, colour in _colours(table[by].astype(str)).items():
        part = table[table[by].astype(str) == group]
        figure.add_trace(go.Bar(x=part[rows].astype(str), y=part["reoffended_pct"], name=group, marker_color=colour,
                                customdata=part["people"], hovertemplate=labels["crosstab_hover"]))
    figure.update_xaxes(title_text=labels[f"rows_{rows}"], type="category")
    figure.update_yaxes(title_text=labels["reoffended_pct"], range=[0, 100], ticksuffix="%")
    figure.update_layout(title=labels["crosstab_title"])
    return _layout(figure, 420)


def error_rates_figure(rates: pd.DataFrame, labels: dict[str, str], published: dict | None = None) -> go.Figure:
    """Two panels, the false-positive and the false-negative rate of each group as bars with their 95%
    bootstrap intervals; ``published`` ({rate: {group: value}}) adds ProPublica's figures as black diamonds."""
    figure = make_subplots(rows=1, cols=2, subplot_titles=[labels["fpr_title"], labels["fnr_title"]])
    colours = _colours(rates["group"])
    for col, rate in enumerate(RATE_KEYS, start=1):
        has_interval = f"{rate}_low" in rates
        figure.add_trace(go.Bar(
            x=rates["group"], y=100 * rates[rate], marker_color=[colours[g] for g in rates["group"]], showlegend=False,
            customdata=rates["people"], hovertemplate=labels["rate_hover"],
            error_y=dict(type="data", symmetric=False, array=100 * (rates[f"{rate}_high"] - rates[rate]),
                         arrayminus=100 * (rates[rate] - rates[f"{rate}_low"])) if has_interval else None,
        ), row=1, col=col)
        if published:
            groups = [g for g in rates["group"] if g in published[rate]]
            figure.add_trace(go.Scatter(x=groups, y=[100 * published[rate][g] for g in groups], mode="markers",
                                        marker=dict(symbol="diamond", size=12, color=PUBLISHED_COLOUR),
                                        name=labels["published"], showlegend=col == 1), row=1, col=col)
        figure.update_yaxes(title_text=labels["rate_axis"], range=[0, 100], ticksuffix="%", row=1, col=col)
    _layout(figure, 430)
    figure.update_layout(margin=dict(l=40))  # room for a first group's name, slanted below the axis
    return figure


def tradeoff_figure(sweep: pd.DataFrame, calibration: pd.DataFrame, threshold: int,
                    labels: dict[str, str]) -> go.Figure:
    """Three panels against the decile score: each group's false-positive rate and false-negative rate if
    "higher risk" started at that score (the chosen threshold marked), and the share of each score's people
    who did reoffend (calibration)."""
    figure = make_subplots(rows=1, cols=3, horizontal_spacing=0.07,
                           subplot_titles=[labels["fpr_title"], labels["fnr_title"], labels["calibration_title"]])
    colours = _colours(sweep["group"])
    for group, colour in colours.items():
        part = sweep[sweep["group"] == group]
        for col, rate in enumerate(RATE_KEYS, start=1):
            figure.add_trace(go.Scatter(x=part["threshold"], y=100 * part[rate], name=group, legendgroup=group,
                                        showlegend=col == 1, line=dict(color=colour)), row=1, col=col)
        scores = calibration[calibration["group"] == group]
        figure.add_trace(go.Scatter(x=scores["decile"], y=100 * scores["reoffended_share"], name=group,
                                    legendgroup=group, showlegend=False, line=dict(color=colour),
                                    customdata=scores["people"], hovertemplate=labels["calibration_hover"]),
                         row=1, col=3)
    for col in (1, 2):
        figure.add_vline(x=threshold, line_dash="dash", line_color="#666666", row=1, col=col)
    for col in (1, 2, 3):
        figure.update_xaxes(title_text=labels["threshold_axis"] if col < 3 else labels["decile_axis"], dtick=1,
                            row=1, col=col)
        figure.update_yaxes(title_text=labels["rate_axis"] if col < 3 else labels["reoffended_axis"], range=[0, 100],
                            ticksuffix="%", row=1, col=col)
    return _layout(figure, 400)


def gender_shades_figure(long: pd.DataFrame, labels: dict[str, str]) -> go.Figure:
    """The published error rates: one bar per classifier in each skin type × gender subgroup."""
    figure = go.Figure()
    for classifier, colour in zip(long["classifier"].unique(), PALETTE):
        part = long[long["classifier"] == classifier]
        figure.add_trace(go.Bar(x=[labels[f"sub_{s}"] for s in part["subgroup"]], y=part["error_pct"], name=classifier,
                                marker_color=colour, text=[f"{v:.1f}%" for v in part["error_pct"]],
                                textposition="outside"))
    figure.update_xaxes(title_text=labels["subgroup_axis"])
    figure.update_yaxes(title_text=labels["error_axis"], ticksuffix="%", range=[0, 40])
    figure.update_layout(title=labels["shades_title"])
    return _layout(figure, 430)


REPLAY_FRAMES = 40


def amplification_figure(history: pd.DataFrame, lesson_share: float, labels: dict[str, str]) -> go.Figure:
    """Against the training step: the share of held-out cooking pictures the classifier calls "woman", the
    true share in those pictures, and the lesson's 84% for reference. A "replay" button (``labels["replay"]``)
    redraws the first line step by step, as it was during training."""
    figure = go.Figure()
    ends = sorted({max(1, round(len(history) * (i + 1) / REPLAY_FRAMES)) for i in range(REPLAY_FRAMES)})
    figure.frames = [go.Frame(data=[go.Scatter(x=history["step"][:end], y=100 * history["predicted_share"][:end])],
                              traces=[0], name=str(end)) for end in ends]
    figure.update_layout(updatemenus=[dict(
        type="buttons", showactive=False, x=0, y=1.12, xanchor="left", yanchor="bottom",
        buttons=[dict(label=labels["replay"], method="animate",
                      args=[None, dict(frame=dict(duration=60, redraw=False), transition=dict(duration=0),
                                       fromcurrent=False, mode="immediate")])])])
    figure.add_trace(go.Scatter(x=history["step"], y=100 * history["predicted_share"], name=labels["predicted_share"],
                                line=dict(color=PALETTE[1], width=3)))
    figure.add_trace(go.Scatter(x=history["step"], y=100 * history["true_share"], name=labels["true_share"],
                                line=dict(color=PALETTE[0], dash="dash")))
    figure.add_hline(y=100 * lesson_share, line_dash="dot", line_color="#888888",
                     annotation_text=labels["lesson_share"], annotation_position="bottom right")
    figure.update_xaxes(title_text=labels["step_axis"])
    figure.update_yaxes(title_text=labels["share_axis"], range=[0, 100], ticksuffix="%")
    return _layout(figure, 380)


def feedback_figure(days: pd.DataFrame, rate_a: float, rate_b: float, labels: dict[str, str]) -> go.Figure:
    """Two panels against the day: district A's share of the patrols and of the recorded incidents, next to
    its share of the true rate; and the incidents recorded so far in each district."""
    figure = make_subplots(rows=1, cols=2, horizontal_spacing=0.1,
                           subplot_titles=[labels["shares_title"], labels["records_title"]])
    figure.add_trace(go.Scatter(x=days["day"], y=100 * days["patrol_share_a"], name=labels["patrol_share_a"],
                                line=dict(color=PALETTE[0], width=3)), row=1, col=1)
    figure.add_trace(go.Scatter(x=days["day"], y=100 * days["record_share_a"], name=labels["record_share_a"],
                                line=dict(color=PALETTE[1])), row=1, col=1)
    figure.add_hline(y=100 * rate_a / (rate_a + rate_b), line_dash="dot", line_color="#444444",
                     annotation_text=labels["truth"], annotation_position="bottom right", row=1, col=1)
    # other colours than the left panel's: there blue is A's share of the patrols, here a district's records
    for column, name, colour in (("recorded_a", "district_a", PALETTE[3]), ("recorded_b", "district_b", PALETTE[2])):
        figure.add_trace(go.Scatter(x=days["day"], y=days[column], name=labels[name], line=dict(color=colour)),
                         row=1, col=2)
    figure.update_xaxes(title_text=labels["day_axis"])
    figure.update_yaxes(title_text=labels["share_of_a_axis"], range=[0, 100], ticksuffix="%", row=1, col=1)
    figure.update_yaxes(title_text=labels["incidents_axis"], rangemode="tozero", row=1, col=2)
    return _layout(figure, 400)


def per_class_figure(errors: dict[str, pd.DataFrame], digit: int, labels: dict[str, str]) -> go.Figure:
    """The error rate of each digit for each model (``errors``: model name → per-class table), the
    under-represented digit's label in bold."""
    figure = go.Figure()
    for (name, table), colour in zip(errors.items(), PALETTE):
        figure.add_trace(go.Bar(x=table["digit"], y=table["error_pct"], name=name, marker_color=colour,
                                customdata=table["images"], hovertemplate=labels["class_hover"]))
    figure.update_xaxes(title_text=labels["digit_axis"], tickmode="array", tickvals=list(range(10)),
                        ticktext=[f"<b>{d}</b>" if d == digit else str(d) for d in range(10)])
    figure.update_yaxes(title_text=labels["error_axis"], ticksuffix="%", rangemode="tozero")
    return _layout(figure, 380)
