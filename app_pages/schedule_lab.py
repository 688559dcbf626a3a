"""Learning rate & momentum lab (Part 2, Lesson 13): training phases, drawn and trained live."""
import functools
import re

import pandas as pd
import streamlit as st

from core import mnist_lab
from core import schedule_lab as lab
from core.controls import Control, read_query
from core.errors import UserError
from core.schedules import OPTIMIZERS
from core.snippets import schedule_snippet
from core.viz import FINDER_LABEL_KEYS, SCHEDULE_LABEL_KEYS, lr_finder_figure, schedule_figure
from core.run_view import MAX_REPLAY_SPEED
from ui.common import (LIVE_REFRESH_SECONDS,
                       cached_run_view, job_manager, mirror_to_link, page_header, replay_from_link, replay_speed,
                       run_from_link, share_link, show_refusal, show_run_state, show_user_error, submit, tr,
                       train_and_cancel, visible_runs)

RUN_ID = re.compile(r"[0-9a-f]{10}")


DEFAULT_TABLE = lab.rows_to_text(lab.preset_rows(lab.DEFAULT_PRESET))
CONTROLS = (
    Control("phases", DEFAULT_TABLE, accept=lab.is_table_text),
    Control("arch", "basic_cnn", lab.ARCHITECTURES),
    Control("n_train", lab.DATA_SIZES[0], lab.DATA_SIZES),
    Control("bs", 128, accept=lambda v: 2 <= v <= mnist_lab.MAX_BATCH),
    Control("disc", 0, (0, 1)),
    Control("swa", 0.0, accept=lambda v: 0 <= v <= lab.MAX_TRAIN_EPOCHS),
    Control("run", "", accept=lambda v: RUN_ID.fullmatch(v) is not None),
    Control("replay", 0.0, accept=lambda v: 0 <= v <= MAX_REPLAY_SPEED),
)
WIDGETS = ("arch", "n_train", "bs", "disc", "swa")  # controls drawn as ordinary widgets
manager = job_manager()


# ----- settings: the link, the table, the presets -----------------------------------------------------
def load_settings() -> None:
    """First visit: from the link (bad values named, then ignored). Back from another page:
    as they were, edits to the table included (Streamlit forgets undrawn widgets)."""
    if "sched_arch" in st.session_state:
        return
    if "sched_saved" in st.session_state:
        saved = st.session_state.sched_saved
        st.session_state.update(saved["widgets"])
        set_table(saved["rows"], saved["preset"], edited=saved["edited"])
        return
    values, ignored = read_query(CONTROLS, st.query_params)
    for name in WIDGETS:
        st.session_state[f"sched_{name}"] = bool(values[name]) if name == "disc" else values[name]
    from_link = values["phases"] != DEFAULT_TABLE
    set_table(lab.rows_from_text(values["phases"]), "" if from_link else lab.DEFAULT_PRESET, edited=from_link)
    st.session_state.sched_run_id = run_from_link(values["run"], lab.KIND, ignored)
    st.session_state.sched_ignored = ignored
    replay_from_link("sched", values)


def set_table(rows: list[dict], preset: str, edited: bool = False) -> None:
    """Replace what the table editor starts from (a new key: the editor drops its old edits)."""
    st.session_state.sched_rows = rows
    st.session_state.sched_table_preset = preset
    st.session_state.sched_table_edited = edited
    st.session_state.sched_table_version = st.session_state.get("sched_table_version", 0) + 1


def apply_preset() -> None:
    name = st.session_state.sched_preset
    parameters = {key: st.session_state[f"sched_param_{name}_{key}"] for key in lab.PRESET_PARAMETERS.get(name, {})
                  if f"sched_param_{name}_{key}" in st.session_state}
    try:
        set_table(lab.preset_rows(name, **parameters), name)
    except UserError as error:
        st.session_state.sched_preset_error = error


def use_suggestion(rows: list[dict], value: float) -> None:
    set_table(lab.scale_lrs(rows, value), st.session_state.sched_table_preset, edited=True)


def column_config() -> dict:
    """Each column sized to its heading (in pixels: about 820 in all), names shown in words."""
    def number(key, width, **options):
        return st.column_config.NumberColumn(tr(f"sched.col.{key}"), width=width, **options)

    def choice(key, width, options, format_func, help):
        return st.column_config.SelectboxColumn(tr(f"sched.col.{key}"), width=width, options=options,
                                                format_func=format_func, help=help)

    decay_name = lambda d: tr(f"decay.{d}")  # noqa: E731
    return {
        "epochs": number("epochs", 65, help=tr("sched.col.epochs_help"), format="%.3g", step=0.05),
        "optimizer": choice("optimizer", 120, list(OPTIMIZERS), lambda o: tr(f"sopt.{o}"), tr("sched.col.optimizer_help")),
        "lr_start": number("lr_start", 80, help=tr("sched.col.lr_start_help"), format="%.2e"),
        "lr_end": number("lr_end", 80, help=tr("sched.col.lr_end_help"), format="%.2e"),
        "lr_decay": choice("lr_decay", 90, list(lab.DECAYS), decay_name, tr("sched.col.decay_help")),
        "power": number("power", 65, help=tr("sched.col.power_help"), format="%.3g"),
        "mom_start": number("mom_start", 85, help=tr("sched.col.mom_help"), format="%.3g", step=0.01),
        "mom_end": number("mom_end", 85, help=tr("sched.col.mom_help"), format="%.3g", step=0.01),
        "mom_decay": choice("mom_decay", 95, list(lab.DECAYS), decay_name, tr("sched.col.decay_help")),
        "image_size": number("image_size", 55, help=tr("sched.col.image_size_help"), format="%d", step=1),
    }


def spec_from_widgets(rows: list[dict]) -> lab.ScheduleSpec:
    return lab.validate(lab.ScheduleSpec(
        phases=tuple(rows), arch=st.session_state.sched_arch, batch_size=int(st.session_state.sched_bs),
        n_train=int(st.session_state.sched_n_train), discriminative=bool(st.session_state.sched_disc),
        swa_start=float(st.session_state.sched_swa),
        preset=st.session_state.sched_table_preset, edited=st.session_state.sched_table_edited,
    ))


def show_table_error(error: UserError) -> None:
    where = tr("sched.in_phase", phase=error.phase) + " " if error.phase else ""
    st.error(where + tr(error.key, **error.params), icon="✋")


# ----- runs -------------------------------------------------------------------------------------------
run_view = functools.partial(cached_run_view, "sched")


def run_label(run: dict) -> str:
    spec = run.get("spec") or {}
    name = tr(f"spreset.{spec['preset']}") if spec.get("preset") in lab.PRESETS else tr("sched.custom")
    if spec.get("edited") and spec.get("preset"):
        name += " ✎"
    accuracy = f" · {run['result']['accuracy']:.2%}" if run.get("result") else ""
    return f"{run['id'][:6]} · {name}{accuracy}"


def chart_labels() -> dict:
    return {key: tr(f"schart.{key}") for key in SCHEDULE_LABEL_KEYS}


def progress_text(latest: dict) -> str:
    return tr("sched.progress", step=latest["step"], total=latest["total_steps"], eta=latest["eta"])


@st.cache_data(max_entries=16, show_spinner=False)
def overlay_frame(name: str, total: int, iters_per_epoch: int, max_lr: float) -> pd.DataFrame:
    return lab.torch_overlay(name, total, iters_per_epoch, max_lr)


# ----- the page ---------------------------------------------------------------------------------------
load_settings()
all_runs = lab.readable_runs(visible_runs(lab.KIND))
page_header(tr("sched.title"), tr("sched.intro"), st.session_state.pop("sched_ignored", []))

preset_col, params_col = st.columns([1, 2.2], gap="large")
with preset_col:
    if "sched_preset" not in st.session_state:
        st.session_state.sched_preset = st.session_state.sched_table_preset or lab.DEFAULT_PRESET
    st.selectbox(tr("sched.preset"), lab.PRESETS, key="sched_preset", format_func=lambda p: tr(f"spreset.{p}"),
                 on_change=apply_preset, help=tr("sched.preset_help"))
    st.caption(tr(f"spreset_note.{st.session_state.sched_preset}"))
with params_col:
    parameters = lab.PRESET_PARAMETERS.get(st.session_state.sched_preset)
    if parameters:
        st.markdown(tr(f"spreset_call.{st.session_state.sched_preset}"))
        cells = st.columns(len(parameters))
        for cell, (key, default) in zip(cells, parameters.items()):
            widget_key = f"sched_param_{st.session_state.sched_preset}_{key}"
            st.session_state.setdefault(widget_key, default)
            cell.number_input(key, key=widget_key, step=1 if isinstance(default, int) else None,
                              format="%d" if isinstance(default, int) else "%g")
        st.button(tr("sched.fill"), on_click=apply_preset)
    if "sched_preset_error" in st.session_state:
        show_user_error(st.session_state.pop("sched_preset_error"))

st.markdown(f"**{tr('sched.table')}**")
edited = st.data_editor(
    lab.frame_from_rows(st.session_state.sched_rows), key=f"sched_table_{st.session_state.sched_table_version}",
    column_config=column_config(), num_rows="dynamic", hide_index=True, width="stretch",
)
current_rows = lab.rows_from_frame(edited)
if current_rows != st.session_state.sched_rows:
    st.session_state.sched_table_edited = True
st.caption(tr("sched.table_help"))

settings, chart = st.columns([1.15, 2.6], gap="large")
with settings:
    st.selectbox(tr("mnist.arch"), lab.ARCHITECTURES, key="sched_arch", format_func=lambda a: tr(f"arch.{a}"))
    st.radio(tr("sched.n_train"), lab.DATA_SIZES, key="sched_n_train", horizontal=True,
             format_func=lambda n: f"{n:,}", help=tr("sched.n_train_help"))
    st.number_input(tr("mnist.batch"), min_value=2, max_value=mnist_lab.MAX_BATCH, step=32, key="sched_bs")
    st.toggle(tr("sched.discriminative"), key="sched_disc", help=tr("sched.discriminative_help"))
    st.number_input(tr("sched.swa"), min_value=0.0, step=0.5, key="sched_swa", help=tr("sched.swa_help"))
    overlays = st.multiselect(tr("sched.overlays"), lab.OVERLAYS, key="sched_overlays", help=tr("sched.overlays_help"),
                              placeholder=tr("sched.overlays_placeholder"))
    log_lr = st.toggle(tr("sched.log_lr"), key="sched_log_lr")

    plan = spec = seconds = None
    try:
        plan = lab.plan(current_rows, int(st.session_state.sched_n_train), int(st.session_state.sched_bs))
        spec = spec_from_widgets(current_rows)
    except UserError as error:
        show_table_error(error)
    if plan is not None:
        st.caption(tr("sched.plan_facts", phases=len(plan.phases), iterations=len(plan.curves),
                      per_epoch=plan.iters_per_epoch, epochs=len(plan.curves) / plan.iters_per_epoch))
    if spec is not None:
        timings = mnist_lab.step_seconds(manager.info.get("mnist_seconds_per_step", {}), [], manager.info.get("device", ""))
        seconds = lab.estimate_seconds(spec, timings)
        st.caption(tr("device.measuring") if seconds is None
                   else tr("mnist.estimate", seconds=max(seconds, 1), device=manager.info["device"]))

    watching = train_and_cancel("sched", lab.KIND, spec, tr("sched.train"), seconds)
    current = st.session_state.get("sched_run_id")

st.session_state.sched_saved = {
    "widgets": {f"sched_{name}": st.session_state[f"sched_{name}"] for name in WIDGETS},
    "rows": current_rows, "preset": st.session_state.sched_table_preset, "edited": st.session_state.sched_table_edited,
}
mirror_to_link(CONTROLS, {
    "phases": lab.rows_to_text(current_rows) if current_rows else DEFAULT_TABLE,
    "arch": st.session_state.sched_arch, "n_train": st.session_state.sched_n_train, "bs": st.session_state.sched_bs,
    "disc": int(st.session_state.sched_disc), "swa": float(st.session_state.sched_swa),
    "run": st.session_state.get("sched_run_id") or "", "replay": replay_speed("sched"),
})

finished_runs = [run for run in all_runs if run["state"] == "finished" and run["id"] != current]
with chart:
    compare_ids = st.multiselect(tr("sched.compare"), [run["id"] for run in finished_runs], key="sched_compare",
                                 format_func=lambda rid: next(run_label(r) for r in finished_runs if r["id"] == rid),
                                 placeholder=tr("mnist.compare_placeholder"))


@st.fragment(run_every=LIVE_REFRESH_SECONDS if watching else None)
def live_chart(plan, overlays: list[str], log_lr: bool, compare_ids: list[str]) -> None:
    run_id = st.session_state.get("sched_run_id")
    runs = []
    if run_id:
        view = run_view(run_id)
        status = show_run_state(view, progress_text,
                                lambda result: tr("sched.finished", accuracy=result["accuracy"] * 100,
                                                  seconds=result["seconds"], device=result["device"]),
                                run_key="sched_run_id", polling=watching)
        if status is not None:
            runs.append((tr("sched.actual"), view.frame()))
    runs += [(run_label(manager.status(rid) or {"id": rid}), run_view(rid).frame()) for rid in compare_ids]
    overlay_frames = []
    if plan is not None and overlays:
        total = len(plan.curves)
        if total <= lab.OVERLAY_MAX_ITERATIONS:
            overlay_frames = [(f"torch {name}", overlay_frame(name, total, plan.iters_per_epoch, float(plan.curves["lr"].max())))
                              for name in overlays]
        else:
            st.caption(tr("sched.overlay_too_long", most=lab.OVERLAY_MAX_ITERATIONS))
    figure = schedule_figure(plan.curves if plan else None, plan.boundaries if plan else [0],
                             plan.phase_names if plan else [], runs, overlay_frames, chart_labels(), log_lr=log_lr)
    st.plotly_chart(figure, width="stretch", key="sched_chart")
    st.caption(tr("sched.chart_caption"))
    if run_id:
        result = run_view(run_id).result
        if result:
            cols = st.columns(3)
            cols[0].metric(tr("mnist.final_accuracy"), f"{result['accuracy']:.2%}")
            if "swa_accuracy" in result:
                cols[1].metric(tr("sched.swa_accuracy"), f"{result['swa_accuracy']:.2%}",
                               delta=f"{(result['swa_accuracy'] - result['accuracy']) * 100:+.2f} pt")
                cols[2].caption(tr("sched.swa_caption", models=result["swa_models"]))
        if watching and not run_view(run_id).active:
            st.rerun()


with chart:
    live_chart(plan, overlays, log_lr, compare_ids)

# ----- the LR finder ------------------------------------------------------------------------------------
st.divider()
st.subheader(tr("sched.finder"))
st.write(tr("sched.finder_intro"))
finder_id = st.session_state.get("sched_finder_id")
finder_view = run_view(finder_id) if finder_id else None
finding = finder_view is not None and finder_view.active
finder_settings, finder_chart = st.columns([1, 2.6], gap="large")
with finder_settings:
    low, high = st.columns(2)
    start_lr = low.number_input(tr("sched.finder_start"), value=1e-5, format="%.0e", key="sched_finder_start")
    end_lr = high.number_input(tr("sched.finder_end"), value=10.0, format="%g", key="sched_finder_end")
    iterations = st.slider(tr("sched.finder_iterations"), 20, 300, 100, step=10, key="sched_finder_iterations")
    linear = st.toggle(tr("sched.finder_linear"), key="sched_finder_linear", help=tr("sched.finder_linear_help"))
    finder_optimizer = lab.finder_optimizer(current_rows)
    st.caption(tr("sched.finder_uses", optimizer=OPTIMIZERS[finder_optimizer].label, arch=tr(f"arch.{st.session_state.sched_arch}")))
    if st.button(tr("sched.finder_run"), disabled=finding, width="stretch"):
        try:
            finder_spec = lab.finder_spec_from_dict(dict(
                arch=st.session_state.sched_arch, optimizer=finder_optimizer,
                batch_size=int(st.session_state.sched_bs), n_train=int(st.session_state.sched_n_train),
                start_lr=float(start_lr), end_lr=float(end_lr), iterations=int(iterations), linear=bool(linear)))
        except UserError as error:
            show_user_error(error)
        else:
            if submit("sched_finder_id", lab.FINDER_KIND, finder_spec.to_dict()):
                st.rerun()
    show_refusal("sched_finder_id")


finder_polling = finder_view is not None and finder_view.live  # training now (a queued one: queue_line polls)


@st.fragment(run_every=LIVE_REFRESH_SECONDS if finder_polling else None)
def finder_panel() -> None:
    run_id = st.session_state.get("sched_finder_id")
    if not run_id:
        st.info(tr("sched.finder_press"), icon="👈")
        return
    view = run_view(run_id)
    status = show_run_state(view, progress_text,
                            lambda result: tr("sched.finder_done", suggestion=result["suggestion"] or 0,
                                              seconds=result["seconds"]),
                            run_key="sched_finder_id", polling=finder_polling)
    if status is None:
        return
    frame = view.frame(("lr", "loss", "smoothed"))
    log_x = st.toggle(tr("sched.finder_log_axis"), value=True, key="sched_finder_log_x")
    result = view.result or {}
    figure = lr_finder_figure(frame.dropna(subset=["lr"]), result.get("suggestion"), result.get("steepest"), {
        key: tr(f"fchart.{key}") for key in FINDER_LABEL_KEYS
    }, log_x=log_x)
    st.plotly_chart(figure, width="stretch", key="sched_finder_chart")
    st.caption(tr("sched.finder_caption"))
    if result.get("suggestion"):
        if result.get("stopped_early"):
            st.caption(tr("sched.finder_stopped"))
        if st.button(tr("sched.finder_use", value=result["suggestion"]), help=tr("sched.finder_use_help")):
            use_suggestion(current_rows, result["suggestion"])
            st.rerun()  # the whole page: a click inside a fragment would redraw only the fragment
    if finding and not view.active:
        st.rerun()


with finder_chart:
    finder_panel()

with st.expander(tr("sched.code")):
    if plan is not None:
        st.code(schedule_snippet(plan.phases, plan.iters_per_epoch, st.session_state.sched_arch,
                                 int(st.session_state.sched_bs)), language="python")
    else:
        st.caption(tr("sched.code_needs_table"))

share_link("schedules")
