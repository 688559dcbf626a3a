"""Figures of the RNN lab (plotly, built from plain data like ``core.viz``) and its strip of guesses (a PNG,
so that it travels and is stored like the other labs' sample grids)."""
from __future__ import annotations

import io
from typing import Sequence

import numpy as np
import plotly.graph_objects as go
from PIL import Image, ImageDraw, ImageFont

from core.viz import PALETTE, RIGHT, WRONG

INPUT, HIDDEN, OUTPUT = "#2ca02c", "#8c564b", "#1f77b4"  # the lesson's green, brown and blue arrows


# ----- the live strip of guesses ------------------------------------------------------------------------
def guesses_png(words: Sequence[str], guesses: Sequence[str], probabilities: Sequence[float],
                first_guessed: int, per_row: int = 9, scale: int = 2) -> bytes:
    """The text, one word per cell; under each word the model guessed, its guess and how sure it
    was, green when right and red when wrong (``guesses[k]`` is the guess for ``words[first_guessed + k]``)."""
    font = ImageFont.load_default(size=11 * scale)
    small = ImageFont.load_default(size=9 * scale)
    cell_w, cell_h, pad = 78 * scale, 44 * scale, 6 * scale
    rows = -(-len(words) // per_row)
    picture = Image.new("RGB", (per_row * cell_w + 2 * pad, rows * cell_h + 2 * pad), "white")
    draw = ImageDraw.Draw(picture)
    for i, word in enumerate(words):
        x, y = pad + (i % per_row) * cell_w, pad + (i // per_row) * cell_h
        draw.text((x + 2 * scale, y), word, fill=(30, 30, 30), font=font)
        k = i - first_guessed
        if 0 <= k < len(guesses):
            colour = RIGHT if guesses[k] == word else WRONG
            draw.rectangle([x, y + 15 * scale, x + cell_w - 4 * scale, y + 36 * scale], outline=colour, width=scale)
            draw.text((x + 3 * scale, y + 17 * scale), f"{guesses[k]} {probabilities[k]:.0%}", fill=colour, font=small)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


# ----- how the batches are cut --------------------------------------------------------------------------
def batches_figure(batch_of_cell: np.ndarray, words: np.ndarray, labels: dict[str, str],
                   chosen_rows: tuple[int, int] | None = None, chosen_column: int | None = None) -> go.Figure:
    """The batchified stream as a grid, rows down and the bs columns across, each cell coloured by the
    batch that reads it as input (grey: the last row, only ever a target); hover shows the word.
    ``chosen_rows`` (first row, how many) outlines one batch, ``chosen_column`` one of its columns."""
    rows, columns = batch_of_cell.shape
    colours = [PALETTE[i % len(PALETTE)] for i in range(int(batch_of_cell.max()) + 1)]
    bands = len(colours) + 1  # grey for -1, then one flat band per batch
    scale = [[0.0, "#d0d0d0"], [1 / bands, "#d0d0d0"]]
    for i, colour in enumerate(colours):
        scale += [[(i + 1) / bands, colour], [(i + 2) / bands, colour]]
    figure = go.Figure(go.Heatmap(
        z=batch_of_cell + 0.5, zmin=-1, zmax=len(colours), colorscale=scale, showscale=False, customdata=words,
        hovertemplate=labels["hover"], xgap=0.5, ygap=0.2,
    ))
    if chosen_rows is not None:
        first, length = chosen_rows
        figure.add_shape(type="rect", x0=-0.5, x1=columns - 0.5, y0=first - 0.5, y1=first + length - 0.5,
                         line=dict(color="black", width=3))
        if chosen_column is not None:
            figure.add_shape(type="rect", x0=chosen_column - 0.5, x1=chosen_column + 0.5, y0=first - 0.5,
                             y1=first + length + 0.5, line=dict(color="black", width=2, dash="dot"))
    figure.update_xaxes(title_text=labels["column"], side="top", range=[-0.5, columns - 0.5])
    figure.update_yaxes(title_text=labels["row"], autorange="reversed")
    figure.update_layout(height=min(900, 160 + 6 * rows), margin=dict(l=10, r=10, t=60, b=10))
    return figure


def lengths_figure(lengths: Sequence[int], bptt: int, first: int, labels: dict[str, str]) -> go.Figure:
    """How long the loader's batches are: a histogram of its randomised lengths, bptt and the first batch marked."""
    figure = go.Figure(go.Histogram(x=list(lengths), xbins=dict(size=1), marker_color=PALETTE[0],
                                    histnorm="percent", name=labels["drawn"]))
    figure.add_vline(x=bptt, line_dash="dash", line_color="#444", annotation_text=f"bptt = {bptt}")
    figure.add_vline(x=first, line_dash="dot", line_color=PALETTE[1], annotation_text=labels["first"],
                     annotation_position="top left")
    figure.update_xaxes(title_text=labels["length"])
    figure.update_yaxes(title_text=labels["share"])
    figure.update_layout(height=300, margin=dict(l=10, r=10, t=30, b=10), showlegend=False)
    return figure


# ----- the unrolled network -----------------------------------------------------------------------------
def unrolled_figure(words: Sequence[str], layers: int, predicts_every_word: bool, keeps_state: bool,
                    current: int, labels: dict[str, str], guesses: Sequence[str] = ()) -> go.Figure:
    """The network unrolled over ``words``: the words at the bottom, one hidden state per word (and layer)
    above, the prediction(s) on top; green arrows in, brown from state to state, blue out. Steps up to
    ``current`` are drawn solid, the rest faded, the current one outlined; ``guesses[i]``, the guess after
    word i, is written over its triangle once that step is reached."""
    figure = go.Figure()
    n = len(words)
    top = layers + 1

    def seen(step: int) -> float:
        return 1.0 if step <= current else 0.25

    def arrow(x0, y0, x1, y1, colour, step, dash=None):
        figure.add_annotation(x=x1, y=y1, ax=x0, ay=y0, xref="x", yref="y", axref="x", ayref="y", showarrow=True,
                              arrowhead=3, arrowsize=1.2, arrowwidth=2.5, arrowcolor=colour, opacity=seen(step),
                              standoff=14, startstandoff=14, text="")
        if dash:
            figure.add_shape(type="line", x0=x0, y0=y0, x1=x1, y1=y1, line=dict(color=colour, dash=dash, width=1))

    for i, word in enumerate(words):
        arrow(i, 0, i, 1, INPUT, i)
        for layer in range(1, layers + 1):
            if layer > 1:
                arrow(i, layer - 1, i, layer, HIDDEN, i)
            if i > 0:
                arrow(i - 1, layer, i, layer, HIDDEN, i)
        if predicts_every_word or i == n - 1:
            arrow(i, layers, i, top, OUTPUT, i)
    if keeps_state:
        for layer in range(1, layers + 1):
            arrow(-0.9, layer, 0, layer, HIDDEN, 0)
        figure.add_annotation(x=-0.9, y=layers + 0.45, text=labels["carried"], showarrow=False, font=dict(size=11))
    xs = list(range(n))
    figure.add_trace(go.Scatter(
        x=xs, y=[0] * n, mode="markers+text", text=list(words), textposition="bottom center",
        marker=dict(symbol="square", size=26, color=[INPUT] * n, opacity=[seen(i) for i in xs],
                    line=dict(width=[4 if i == current else 0 for i in xs], color="black")),
        hoverinfo="text", hovertext=[labels["word"].format(i=i + 1, word=w) for i, w in enumerate(words)],
    ))
    for layer in range(1, layers + 1):
        figure.add_trace(go.Scatter(
            x=xs, y=[layer] * n, mode="markers",
            marker=dict(symbol="circle", size=30, color=[HIDDEN] * n, opacity=[seen(i) for i in xs],
                        line=dict(width=[4 if i == current else 0 for i in xs], color="black")),
            hoverinfo="text", hovertext=[labels["hidden"].format(i=i + 1, layer=layer) for i in xs],
        ))
    outputs = xs if predicts_every_word else [n - 1]
    written = [guesses[i] if i < len(guesses) and i <= current else "" for i in outputs]
    figure.add_trace(go.Scatter(
        x=outputs, y=[top] * len(outputs), mode="markers+text", text=written, textposition="top center",
        textfont=dict(color=OUTPUT, size=13),
        marker=dict(symbol="triangle-up", size=28, color=OUTPUT, opacity=[seen(i) for i in outputs],
                    line=dict(width=[4 if i == current else 0 for i in outputs], color="black")),
        hoverinfo="text", hovertext=[labels["output"].format(i=i + 2) for i in outputs],
    ))
    figure.update_xaxes(visible=False, range=[-1.4 if keeps_state else -0.6, n - 0.4])
    figure.update_yaxes(visible=False, range=[-0.8, top + 0.8])
    figure.update_layout(height=150 + 70 * top, margin=dict(l=10, r=10, t=10, b=10), showlegend=False,
                         plot_bgcolor="white")
    return figure


def hidden_figure(embedding: np.ndarray, hidden: np.ndarray, labels: dict[str, str], per_row: int = 16) -> go.Figure:
    """The current word's embedding and the hidden state after it (each layer), each as a grid of
    ``per_row`` cells a row, on one colour scale centred at 0."""
    grids = [(labels["embedding"], embedding)] + [
        (labels["layer"].format(layer=i + 1) if len(hidden) > 1 else labels["state"], h) for i, h in enumerate(hidden)]
    limit = float(max(np.abs(values).max() for _, values in grids)) or 1.0
    figure = go.Figure()
    y_offset, ticks = 0, []
    for title, values in grids:
        rows = -(-len(values) // per_row)
        padded = np.full(rows * per_row, np.nan)
        padded[:len(values)] = values
        cells = padded.reshape(rows, per_row)
        figure.add_trace(go.Heatmap(
            z=cells, x=list(range(per_row)), y=[y_offset + r for r in range(rows)], zmin=-limit, zmax=limit,
            colorscale="RdBu", reversescale=True, showscale=title == grids[0][0], xgap=1, ygap=1,
            customdata=np.arange(rows * per_row).reshape(rows, per_row), name=title,
            hovertemplate=labels["cell"],
        ))
        ticks.append((y_offset + (rows - 1) / 2, title))
        y_offset += rows + 1
    figure.update_yaxes(autorange="reversed", tickvals=[t for t, _ in ticks], ticktext=[name for _, name in ticks])
    figure.update_xaxes(visible=False)
    figure.update_layout(height=90 + 22 * y_offset, margin=dict(l=10, r=10, t=10, b=10))
    return figure


def top_words_figure(probabilities: np.ndarray, itos: Sequence[str], truth: str | None,
                     labels: dict[str, str], k: int = 5) -> go.Figure:
    """The k likeliest next words as bars (the right one, when known, in green)."""
    order = np.argsort(-probabilities)[:k]
    words = [itos[i] for i in order]
    colours = [("#%02x%02x%02x" % RIGHT) if word == truth else OUTPUT for word in words]
    figure = go.Figure(go.Bar(x=probabilities[order] * 100, y=words, orientation="h", marker_color=colours,
                              text=[f"{p:.0%}" for p in probabilities[order]], textposition="auto"))
    figure.update_xaxes(title_text=labels["probability"], range=[0, 100])
    figure.update_yaxes(autorange="reversed", type="category")
    figure.update_layout(height=60 + 34 * k, margin=dict(l=10, r=10, t=10, b=10))
    return figure


def accuracy_figure(rows: Sequence[dict], labels: dict[str, str]) -> go.Figure:
    """Each model's accuracy here beside the lesson's, as grouped bars."""
    models = [row["model"] for row in rows]
    figure = go.Figure([
        go.Bar(name=labels["lesson"], x=models, y=[row["lesson"] * 100 for row in rows], marker_color="#b0b0b0",
               text=[f"{row['lesson']:.1%}" for row in rows], textposition="outside"),
        go.Bar(name=labels["here"], x=models, y=[None if row["here"] is None else row["here"] * 100 for row in rows],
               marker_color=PALETTE[0], text=[("" if row["here"] is None else f"{row['here']:.1%}") for row in rows],
               textposition="outside"),
    ])
    figure.update_yaxes(title_text=labels["accuracy"], range=[0, 105])
    figure.update_layout(barmode="group", height=340, margin=dict(l=10, r=10, t=10, b=10),
                         legend=dict(orientation="h", y=1.08, x=0))
    return figure
