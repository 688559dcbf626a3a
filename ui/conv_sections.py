"""The five tabs of the convolution lab (app_pages/conv_lab.py): layout and widgets; everything else is in core."""
from __future__ import annotations

import functools
import time
from typing import Callable

import numpy as np
import pandas as pd
import streamlit as st

from core import checkerboard_lab as checker
from core import shape_tracer as tracer
from core.arithmetic import conv_out_worked, conv_transpose_out_worked
from core.checkerboard_figures import losses_figure, outputs_and_spectra_figure
from core.conv_figures import (GRID_LABEL_KEYS, fit_figure, overlap_figure, sheet_figure, stamps_figure, window_figure,
                               zero_insertion_figure)
from core.conv_grids import (SHEET_INPUT, SHEET_KERNEL, ConvSettings, check_drawable, check_sheet, example_input,
                             example_kernel, interior, is_even, overlap_counts, spreadsheet_fit, two_ways_difference,
                             undoes_shape, window_sum, written_sum)
from core.errors import UserError
from core.models.upsampling_generator import UPSAMPLERS
from core.snippets import conv_snippet, sheet_snippet, upsampler_snippet
from ui.common import (LIVE_REFRESH_SECONDS,
                       cached_run_view, checked, job_manager, show_run_state, show_user_error, tr, train_and_cancel,
                       visible_runs)

PLAY_SECONDS = 0.9
SHEET_PLAY_SECONDS, SHEET_STEPS_PER_TICK = 0.6, 15  # the 300 steps of the fit in about 12 s
LIMITS = {"n": (1, 16), "k": (1, 7), "s": (1, 4), "p": (0, 4), "d": (1, 3), "op": (0, 3),
          "ck": (1, 7), "cs": (1, 4), "cn": (2, 8)}


# ----- shared pieces ------------------------------------------------------------------------------------
def grid_labels() -> dict[str, str]:
    return {name: tr(f"conv.grid.{name}") for name in GRID_LABEL_KEYS}


def settings_sliders(transposed: bool) -> ConvSettings:
    """The input, kernel, stride, padding and dilation sliders (and output padding for a transposed
    convolution), shared by the first two tabs."""
    names = ("n", "k", "s", "p", "d", "op") if transposed else ("n", "k", "s", "p", "d")
    for column, name in zip(st.columns(len(names)), names):
        column.slider(tr(f"conv.{name}"), *LIMITS[name], key=f"conv_{name}", help=tr(f"conv.{name}_help"),
                      on_change=restart, args=("window", "stamps"))
    values = st.session_state
    return ConvSettings(values.conv_n, values.conv_k, values.conv_s, values.conv_p, values.conv_d,
                        values.conv_op if transposed else 0)


def sized_settings(transposed: bool) -> tuple[ConvSettings, int] | None:
    """The sliders' (transposed) convolution and its output size, with the size formula worked out; None
    after saying what to change when the settings cannot work or cannot be drawn."""
    s = settings_sliders(transposed)
    try:
        check_drawable(s, transposed)
        if transposed:
            size = s.transpose_size()
            worked = conv_transpose_out_worked(s.n, s.kernel, s.stride, s.padding, s.output_padding, s.dilation)
        else:
            size = s.conv_size()
            worked = conv_out_worked(s.n, s.kernel, s.stride, s.padding, s.dilation)
    except UserError as error:
        show_user_error(error)
        return None
    st.markdown(tr("conv.size_formula", worked=worked, size=size))
    return s, size


def numbers_of(s: ConvSettings) -> tuple[np.ndarray, np.ndarray]:
    seed = st.session_state.conv_seed
    return example_input(s.n, seed), example_kernel(s.kernel, seed)


def new_numbers() -> None:
    st.session_state.conv_seed = (st.session_state.conv_seed + 1) % 1000


def new_numbers_button() -> None:
    st.button(tr("conv.new_numbers"), on_click=new_numbers, key="conv_new_numbers", help=tr("conv.new_numbers_help"))


def colour_key() -> None:
    st.caption(tr("conv.colours"))


# ----- the stepper: Back, Next, Play and a slider over the steps ----------------------------------------
def restart(*names: str) -> None:
    """Back to the first step, paused (the steps' count may have changed)."""
    for name in names:
        st.session_state.pop(f"conv_{name}_step", None)
        st.session_state[f"conv_{name}_playing"] = False


def step_to(name: str, step: int) -> None:
    st.session_state[f"conv_{name}_step"] = step


def play(name: str, from_step: int) -> None:
    st.session_state.update({f"conv_{name}_playing": True, f"conv_{name}_step": from_step,
                             f"conv_{name}_stepped_at": time.monotonic()})


def pause(name: str) -> None:
    st.session_state[f"conv_{name}_playing"] = False


def stepper(name: str, first: int, last: int, draw: Callable[[int], None], seconds: float = PLAY_SECONDS,
            stride: int = 1) -> None:
    """Steps ``first`` to ``last`` of ``draw`` with Back, Next, Play and a slider (a fragment: a step redraws
    only this; while playing, its timer moves ``stride`` steps every ``seconds``)."""
    playing = bool(st.session_state.get(f"conv_{name}_playing"))
    st.session_state[f"conv_{name}_timer"] = playing
    st.fragment(run_every=seconds if playing else None)(step_panel)(name, first, last, draw, seconds, stride)


def step_panel(name: str, first: int, last: int, draw: Callable[[int], None], seconds: float, stride: int) -> None:
    playing_key, step_key = f"conv_{name}_playing", f"conv_{name}_step"
    if bool(st.session_state.get(playing_key)) != st.session_state.get(f"conv_{name}_timer"):
        st.rerun()  # Play or Pause was pressed: the whole page, so that the timer starts or stops
    step = min(max(int(st.session_state.get(step_key, first)), first), last)
    # While playing, only the timer moves on (not a click elsewhere, nor a redraw of the page)
    since = time.monotonic() - st.session_state.get(f"conv_{name}_stepped_at", 0.0)
    if st.session_state.get(playing_key) and since >= 0.8 * seconds:
        if step >= last:
            pause(name)
            st.rerun()
        step = min(step + stride, last)
        st.session_state[f"conv_{name}_stepped_at"] = time.monotonic()
    st.session_state[step_key] = step
    back, forward, playing, where = st.columns([1, 1, 1, 5], vertical_alignment="bottom")
    back.button(tr("rnn.back"), disabled=step <= first, on_click=step_to, args=(name, max(step - stride, first)),
                width="stretch", key=f"conv_{name}_back")
    forward.button(tr("rnn.next"), disabled=step >= last, on_click=step_to, args=(name, min(step + stride, last)),
                   width="stretch", key=f"conv_{name}_next")
    if st.session_state.get(playing_key):
        playing.button(tr("rnn.pause"), width="stretch", key=f"conv_{name}_pause", on_click=pause, args=(name,))
    else:
        playing.button(tr("rnn.play"), width="stretch", key=f"conv_{name}_play", on_click=play,
                       args=(name, first if step >= last else step))
    if last > first:
        where.slider(tr(f"conv.step.{name}"), first, last, key=step_key, label_visibility="collapsed")
    draw(step)


# ----- 1. the sliding window ----------------------------------------------------------------------------
def window_tab() -> None:
    st.write(tr("conv.window_intro"))
    if (settings := sized_settings(transposed=False)) is None:
        return
    s, size = settings
    x, w = numbers_of(s)
    labels = grid_labels()

    def draw(step: int) -> None:
        row, col = divmod(step - 1, size)
        st.markdown(tr("conv.window_step", step=step, total=size * size, row=row, col=col))
        st.plotly_chart(window_figure(x, w, s, step - 1, labels), width="stretch", key="conv_window_chart",
                        config={"displayModeBar": False})
        pairs, total = window_sum(x, w, row, col, s)
        st.code(f"out[{row}, {col}] = {written_sum(pairs, total)}", language=None, wrap_lines=True)

    stepper("window", 1, size * size, draw)
    colour_key()
    new_numbers_button()
    with st.expander(tr("mnist.code")):
        st.code(conv_snippet(s, transposed=False), language="python")


# ----- 2. the transposed convolution, two ways ----------------------------------------------------------
def transposed_tab() -> None:
    st.write(tr("conv.transposed_intro"))
    if (settings := sized_settings(transposed=True)) is None:
        return
    s, size = settings
    if undoes_shape(s):
        st.caption(tr("conv.undoes_shape", n=s.n, size=size))
    x, w = numbers_of(s)
    labels = grid_labels()
    st.subheader(tr("conv.way_a"))
    st.write(tr("conv.way_a_intro"))

    def draw(step: int) -> None:
        row, col = divmod(step - 1, s.n)
        st.markdown(tr("conv.stamp_step", step=step, total=s.n * s.n, row=row, col=col, value=f"{x[row, col]:g}",
                       top=row * s.stride, left=col * s.stride))
        st.plotly_chart(stamps_figure(x, w, s, step, labels), width="stretch", key="conv_stamps_chart",
                        config={"displayModeBar": False})

    stepper("stamps", 1, s.n * s.n, draw)
    st.caption(tr("conv.stamps_caption", padding=s.padding, output_padding=s.output_padding))
    st.subheader(tr("conv.way_b"))
    st.write(tr("conv.way_b_intro", inserted=s.stride - 1, around=s.dilation * (s.kernel - 1) - s.padding,
                output_padding=s.output_padding))
    st.plotly_chart(zero_insertion_figure(x, w, s, labels), width="stretch", key="conv_zeros_chart",
                    config={"displayModeBar": False})
    colour_key()
    st.success(tr("conv.ways_agree", size=size, difference=two_ways_difference(x, w, s)), icon="🟰")
    new_numbers_button()
    with st.expander(tr("mnist.code")):
        st.code(conv_snippet(s, transposed=True), language="python")


# ----- 3. the spreadsheet deconvolution (Lesson 12) -----------------------------------------------------
@st.cache_data(show_spinner=False, max_entries=16)
def sheet_fit(x: tuple, kernel: tuple):
    return spreadsheet_fit(np.array(x), np.array(kernel))


def grid_editor(title: str, key: str, default: np.ndarray) -> np.ndarray:
    st.markdown(f"**{title}**")
    edited = st.data_editor(pd.DataFrame(default, columns=[str(c) for c in range(default.shape[1])]),
                            key=f"{key}_{st.session_state.conv_sheet_version}", hide_index=True, width="stretch",
                            column_config={str(c): st.column_config.NumberColumn(required=True, format="%g")
                                           for c in range(default.shape[1])})
    return edited.to_numpy(dtype=float, na_value=np.nan)


def reset_sheet() -> None:
    st.session_state.conv_sheet_version = st.session_state.get("conv_sheet_version", 0) + 1
    restart("sheet")


def sheet_tab() -> None:
    st.write(tr("conv.sheet_intro"))
    st.session_state.setdefault("conv_sheet_version", 0)
    editors = st.columns([4, 3, 3], vertical_alignment="bottom")
    with editors[0]:
        x = grid_editor(tr("conv.sheet_input"), "conv_sheet_input", SHEET_INPUT)
    with editors[1]:
        kernel = grid_editor(tr("conv.sheet_kernel"), "conv_sheet_kernel", SHEET_KERNEL)
    editors[2].button(tr("conv.sheet_reset"), on_click=reset_sheet, key="conv_sheet_reset", width="stretch")
    try:
        check_sheet(x, kernel)
    except UserError as error:
        show_user_error(error)
        return
    fit = sheet_fit(tuple(map(tuple, x)), tuple(map(tuple, kernel)))
    labels = grid_labels()
    st.markdown(tr("conv.sheet_forward"))
    st.plotly_chart(window_figure(x, kernel, ConvSettings(4, 3), 3, labels), width="stretch", key="conv_sheet_forward",
                    config={"displayModeBar": False})
    st.markdown(tr("conv.sheet_back"))

    def draw(step: int) -> None:
        st.plotly_chart(sheet_figure(fit, x, step, labels), width="stretch", key="conv_sheet_grids",
                        config={"displayModeBar": False})
        curve, number = st.columns([2.2, 1], gap="large", vertical_alignment="center")
        curve.plotly_chart(fit_figure(fit.losses, step, fit.least_squares_l1, {
            "step": tr("conv.fit_step"), "error": tr("conv.fit_error"), "fit": tr("conv.fit_l1"),
            "least_squares": tr("conv.fit_least_squares", error=fit.least_squares_l1)}),
            width="stretch", key="conv_sheet_curve")
        number.metric(tr("conv.fit_now", step=step), f"{fit.losses[step]:.2f}",
                      delta=f"{fit.losses[step] - fit.losses[0]:.2f}" if step else None, delta_color="inverse")

    stepper("sheet", 0, len(fit.losses) - 1, draw, seconds=SHEET_PLAY_SECONDS, stride=SHEET_STEPS_PER_TICK)
    st.caption(tr("conv.sheet_caption", final=fit.losses[-1], least_squares=fit.least_squares_l1))
    with st.expander(tr("mnist.code")):
        st.code(sheet_snippet(x, kernel), language="python")


# ----- 4. checkerboards ---------------------------------------------------------------------------------
@st.cache_data(show_spinner=False)
def untrained(width: int) -> dict[str, np.ndarray]:
    return checker.untrained_outputs(width)


def runs() -> list[dict]:
    return checker.readable_runs(visible_runs(checker.KIND))


def upsampler_names() -> dict[str, str]:
    return {name: tr(f"conv.up.{name}") for name in UPSAMPLERS}


def spectra_figure(images: dict[str, np.ndarray], spectra: dict[str, np.ndarray]):
    """Each upsampler's first digit above the batch's mean spectrum."""
    return outputs_and_spectra_figure(images, spectra, upsampler_names(), {
        "x": tr("conv.pixel_x"), "y": tr("conv.pixel_y"), "frequency": tr("conv.frequency")})


def checker_tab() -> None:
    st.write(tr("conv.checker_intro"))
    one, two, three = st.columns(3)
    one.slider(tr("conv.k"), *LIMITS["ck"], key="conv_ck")
    two.slider(tr("conv.s"), *LIMITS["cs"], key="conv_cs")
    three.slider(tr("conv.cn"), *LIMITS["cn"], key="conv_cn", help=tr("conv.cn_help"))
    kernel, stride, n = st.session_state.conv_ck, st.session_state.conv_cs, st.session_state.conv_cn
    counts = overlap_counts(n, kernel, stride)
    left, right = st.columns([1.3, 1], gap="large")
    left.plotly_chart(overlap_figure(counts, kernel - 1, {"cell": tr("conv.grid.cell"), "count": tr("conv.count")}),
                      width="stretch", key="conv_overlap", config={"displayModeBar": False})
    with right:
        inside = sorted(set(interior(counts, kernel).flatten().tolist()))
        if not inside:
            st.info(tr("conv.no_interior", n=n), icon="↔️")
        elif is_even(kernel, stride):
            st.success(tr("conv.even", k=kernel, s=stride, count=inside[0]), icon="✅")
        else:
            st.warning(tr("conv.uneven", k=kernel, s=stride, counts=", ".join(map(str, inside))), icon="🏁")
        st.caption(tr("conv.overlap_caption"))
    st.divider()
    st.subheader(tr("conv.generators"))
    st.write(tr("conv.generators_intro"))
    outputs = untrained(checker.preset_spec(st.session_state.conv_preset).width)
    st.markdown(f"**{tr('conv.at_init')}**")
    st.plotly_chart(spectra_figure({name: images[0] for name, images in outputs.items()},
                                   {name: checker.spectrum(images) for name, images in outputs.items()}),
                    width="stretch", key="conv_init_spectra")
    st.caption(tr("conv.spectra_caption"))
    scores = {name: checker.checkerboard_score(images) for name, images in outputs.items()}
    train_panel(scores)


def checker_spec() -> checker.CheckerboardSpec:
    return checker.validate(checker.preset_spec(st.session_state.conv_preset))


run_view = functools.partial(cached_run_view, "conv")


def train_panel(init_scores: dict[str, float]) -> None:
    manager = job_manager()
    all_runs = runs()
    settings, facts = st.columns([1, 1.2], gap="large")
    with settings:
        st.radio(tr("mnist.preset"), checker.PRESETS, key="conv_preset", horizontal=True,
                 format_func=lambda p: tr(f"preset.{p}"), help=tr("conv.preset_help"))
        spec = checked(checker_spec)
        seconds = None
        if spec is not None:
            seconds = checker.estimate_seconds(spec, manager.info, all_runs, manager.info.get("device", ""))
            st.caption(tr("device.measuring") if seconds is None else tr(
                "conv.estimate", steps=spec.steps, seconds=max(seconds, 1), device=manager.info.get("device", "")))
        watching = train_and_cancel("conv", checker.KIND, spec, tr("conv.train"), seconds)
    with facts:
        st.caption(tr("conv.task"))
        with st.expander(tr("mnist.code")):
            st.code(upsampler_snippet(), language="python")
    live_panel(watching, init_scores)


def finished_text(result: dict) -> str:
    return tr("conv.finished", steps=result["steps"], seconds=result["seconds"], device=result["device"])


def step_progress(latest: dict) -> str:
    return tr("conv.progress", step=latest["step"], total=latest["total_steps"], eta=latest["eta"])


def live_panel(watching: bool, init_scores: dict[str, float]) -> None:
    @st.fragment(run_every=LIVE_REFRESH_SECONDS if watching else None)
    def panel() -> None:
        run_id = st.session_state.get("conv_run_id")
        if not run_id:
            st.info(tr("conv.press_train"), icon="👆")
            score_table(init_scores, None)
            return
        view = run_view(run_id)
        if show_run_state(view, step_progress, finished_text, run_key="conv_run_id", polling=watching) is None:
            return
        frame = view.frame()
        if not frame.empty:
            st.plotly_chart(losses_figure(frame, upsampler_names(), {"step": tr("conv.fit_step"),
                                                                     "loss": tr("conv.loss")}),
                            width="stretch", key="conv_losses")
            st.caption(tr("conv.losses_caption"))
        if view.result:
            images = {name: np.array(output) for name, output in view.result["outputs"].items()}
            spectra = {name: np.array(values) for name, values in view.result["spectra"].items()}
            st.markdown(f"**{tr('conv.after_training', steps=view.result['steps'])}**")
            st.plotly_chart(spectra_figure(images, spectra), width="stretch", key="conv_trained_spectra")
            score_table(init_scores, view.result["spectra_score"])
        elif view.sample_png:
            st.image(view.sample_png, caption=tr("conv.samples_caption"))
        if watching and not view.active:
            st.rerun()  # the run ended: the whole page, so that Train is enabled again

    panel()


def score_table(init_scores: dict[str, float], trained_scores: dict[str, float] | None) -> None:
    table = pd.DataFrame({tr("conv.col_upsampler"): list(upsampler_names().values()),
                          tr("conv.col_init"): [init_scores[name] for name in UPSAMPLERS]})
    if trained_scores:
        table[tr("conv.col_trained")] = [trained_scores[name] for name in UPSAMPLERS]
    st.dataframe(table, hide_index=True, width="stretch", column_config={
        column: st.column_config.NumberColumn(format="%.2f") for column in table.columns[1:]})
    st.caption(tr("conv.score_caption"))


# ----- 5. the shape tracer ------------------------------------------------------------------------------
EDITOR_COLUMNS = ("kind", "out", "kernel", "stride", "padding", "bias", "scale")


def load_tracer_preset() -> None:
    st.session_state.conv_tshape = tracer.PRESETS[st.session_state.conv_tpreset][0]
    st.session_state.conv_table_version = st.session_state.get("conv_table_version", 0) + 1


def preset_table(name: str) -> pd.DataFrame:
    return pd.DataFrame(tracer.PRESETS[name][1]).reindex(columns=list(EDITOR_COLUMNS))


def table_height(rows: int) -> int:
    """Room for every row (with the header), up to about 16 of them."""
    return min(36 + 35 * rows, 600)


def tracer_tab() -> None:
    st.write(tr("conv.tracer_intro"))
    st.session_state.setdefault("conv_table_version", 0)
    st.session_state.setdefault("conv_tshape", tracer.PRESETS[st.session_state.conv_tpreset][0])
    left, right = st.columns([2, 1])
    left.selectbox(tr("conv.tracer_preset"), list(tracer.PRESETS), key="conv_tpreset", on_change=load_tracer_preset,
                   format_func=lambda name: tr(f"conv.preset.{name}"))
    right.text_input(tr("conv.tracer_shape"), key="conv_tshape", help=tr("conv.tracer_shape_help"))
    rows = preset_table(st.session_state.conv_tpreset)
    key = f"conv_table_{st.session_state.conv_table_version}"
    added = len(st.session_state.get(key, {}).get("added_rows", []))  # the editor grows with the rows added
    table = st.data_editor(
        rows, num_rows="dynamic", hide_index=True, width="stretch", height=table_height(len(rows) + added + 1),
        key=key, column_config={
            "kind": st.column_config.SelectboxColumn(tr("conv.col_kind"), options=list(tracer.KINDS), required=True),
            "out": st.column_config.NumberColumn(tr("conv.col_out"), min_value=1, step=1, help=tr("conv.col_out_help")),
            "kernel": st.column_config.TextColumn(tr("conv.col_kernel"), help=tr("conv.col_kernel_help")),
            "stride": st.column_config.NumberColumn(tr("conv.col_stride"), min_value=1, step=1),
            "padding": st.column_config.TextColumn(tr("conv.col_padding"), help=tr("conv.col_kernel_help")),
            "bias": st.column_config.CheckboxColumn(tr("conv.col_bias")),
            "scale": st.column_config.NumberColumn(tr("conv.col_scale"), min_value=1, step=1,
                                                   help=tr("conv.col_scale_help")),
        })
    layers = [row for row in table.to_dict("records") if isinstance(row.get("kind"), str)]  # a new row has none yet
    try:
        traced = tracer.trace(layers, tracer.parse_shape(st.session_state.conv_tshape))
    except UserError as error:
        show_user_error(error)
        return
    shown = pd.DataFrame({
        tr("conv.col_row"): traced["row"], tr("conv.col_kind"): traced["kind"],
        tr("conv.col_settings"): traced["settings"], tr("conv.col_shape"): traced["shape"],
        tr("conv.col_torch_shape"): traced["torch_shape"], tr("table.params"): traced["params"],
        tr("conv.col_torch_params"): traced["torch_params"], tr("conv.col_macs"): traced["macs"],
        tr("conv.col_agrees"): ["✅" if agrees else "❌" for agrees in traced["agrees"]],
    })
    st.dataframe(shown, hide_index=True, width="stretch", height=table_height(len(shown)), column_config={
        column: st.column_config.NumberColumn(format="localized")
        for column in (tr("table.params"), tr("conv.col_torch_params"), tr("conv.col_macs"))})
    one, two, three = st.columns(3)
    one.metric(tr("conv.output_shape"), traced["shape"].iloc[-1] if len(traced) else st.session_state.conv_tshape)
    two.metric(tr("conv.total_params"), f"{int(traced['params'].sum()):,}")
    three.metric(tr("conv.total_macs"), f"{int(traced['macs'].sum()):,}")
    if not traced["agrees"].all():
        st.error(tr("conv.disagree"), icon="❌")
    else:
        st.caption(tr("conv.tracer_caption"))
    with st.expander(tr("conv.inception"), expanded=st.session_state.conv_tpreset in tracer.INCEPTION_VARIANTS):
        comparison = tracer.inception_comparison()
        st.dataframe(pd.DataFrame({
            tr("conv.col_way"): [tr(f"conv.preset.{name}") for name in comparison["preset"]],
            tr("table.params"): comparison["params"], tr("conv.col_macs"): comparison["macs"]}),
            hide_index=True, width="stretch", column_config={
                column: st.column_config.NumberColumn(format="localized") for column in (tr("table.params"),
                                                                                         tr("conv.col_macs"))})
        st.caption(tr("conv.inception_caption"))
    with st.expander(tr("mnist.code")):
        st.code(tracer.layer_code(layers, tracer.parse_shape(st.session_state.conv_tshape)), language="python")
