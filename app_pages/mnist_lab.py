"""MNIST lab (Part 1, Lesson 7): a CNN from scratch, trained live."""
import functools
import re

import pandas as pd
import streamlit as st

from core import mnist_lab as lab
from core.controls import Control
from core.run_view import MAX_REPLAY_SPEED
from core.errors import UserError
from core.snippets import mnist_snippet
from core.viz import confusion_figure, training_figure
from ui.common import (LIVE_REFRESH_SECONDS,
                       cached_run_view, checked, epoch_progress, job_manager, layer_table_view, mirror_to_link,
                       page_header, replay_speed, settings_from_link, share_link, show_run_state, tr, train_and_cancel,
                       training_figure_labels, visible_runs, when)

CONTROLS = (
    Control("arch", "basic_cnn", lab.ARCHITECTURES),
    Control("preset", "demo", lab.PRESETS),
    Control("epochs", 3, accept=lambda v: 1 <= v <= lab.MAX_EPOCHS),
    Control("lr", 0.1, accept=lambda v: 0 < v <= lab.MAX_LR),
    Control("bs", 128, accept=lambda v: 1 <= v <= lab.MAX_BATCH),
    Control("opt", "sgd", lab.OPTIMIZERS),
    Control("n_train", 60_000, accept=lambda v: 100 <= v <= 60_000),
    Control("seed", 0, accept=lambda v: 0 <= v < 2**31),
    Control("run", "", accept=lambda v: re.fullmatch(r"[0-9a-f]{10}", v) is not None),
    Control("replay", 0.0, accept=lambda v: 0 <= v <= MAX_REPLAY_SPEED),
)
manager = job_manager()


def load_settings() -> None:
    values = settings_from_link("mnist", CONTROLS, lab.KIND)
    for name, value in (values or {}).items():
        if name not in ("run", "replay"):
            st.session_state[f"mnist_{name}"] = str(value) if name == "lr" else value


def apply_preset() -> None:
    spec = lab.preset_spec(st.session_state.mnist_arch, st.session_state.mnist_preset)
    st.session_state.mnist_epochs = spec.epochs
    st.session_state.mnist_lr = f"{spec.max_lr:g}"
    st.session_state.mnist_n_train = spec.n_train


def spec_from_widgets() -> lab.MnistSpec:
    """The run spec the widgets describe; UserError for nonsense."""
    try:
        lr = float(str(st.session_state.mnist_lr).strip())
    except ValueError:
        raise UserError("mnist.lr_not_number", "Type the learning rate as a number, such as 0.1 or 3e-3.") from None
    return lab.validate(lab.MnistSpec(
        arch=st.session_state.mnist_arch, preset=st.session_state.mnist_preset,
        epochs=int(st.session_state.mnist_epochs), max_lr=lr, batch_size=int(st.session_state.mnist_bs),
        optimizer=st.session_state.mnist_opt, n_train=int(st.session_state.mnist_n_train),
        seed=int(st.session_state.mnist_seed),
    ))


run_view = functools.partial(cached_run_view, "mnist")


def run_label(run: dict) -> str:
    spec = run["spec"] or {}
    label = f"{run['id'][:6]} · {tr('arch.' + spec.get('arch', 'basic_cnn'))} · lr {spec.get('max_lr', 0):g}"
    if spec.get("scarce_digit", -1) >= 0:  # trained by the bias lab with one digit made scarce
        label += " · " + tr("bias.model.scarce_short", digit=spec["scarce_digit"], keep=100 * spec["scarce_keep"])
    return label


load_settings()
all_runs = lab.readable_runs(visible_runs(lab.KIND))  # newest first
page_header(tr("mnist.title"), tr("mnist.intro"), st.session_state.pop("mnist_ignored", []))

settings, table = st.columns([1, 1.25], gap="large")
with settings:
    st.selectbox(tr("mnist.arch"), lab.ARCHITECTURES, key="mnist_arch",
                 format_func=lambda a: tr(f"arch.{a}"), on_change=apply_preset)
    st.radio(tr("mnist.preset"), lab.PRESETS, key="mnist_preset", horizontal=True,
             format_func=lambda p: tr(f"preset.{p}"), on_change=apply_preset,
             help=tr("mnist.preset_help"))
    left, right = st.columns(2)
    left.number_input(tr("mnist.epochs"), step=1, key="mnist_epochs")
    right.text_input(tr("mnist.lr"), key="mnist_lr", help=tr("mnist.lr_help"))
    with st.expander(tr("mnist.more")):
        st.selectbox(tr("mnist.optimizer"), lab.OPTIMIZERS, key="mnist_opt", format_func=lambda o: tr(f"opt.{o}"))
        st.number_input(tr("mnist.batch"), step=32, key="mnist_bs")
        st.number_input(tr("mnist.n_train"), step=1000, key="mnist_n_train")
        st.number_input(tr("mnist.seed"), step=1, key="mnist_seed")

    spec, seconds = checked(spec_from_widgets), None
    if spec is not None:
        for key, _english, params in lab.advice(spec):
            st.warning(tr(key, **params), icon="⚠️")
        timings = lab.step_seconds(manager.info.get("mnist_seconds_per_step", {}), all_runs,
                                   manager.info.get("device", ""))
        seconds = lab.estimate_seconds(spec, timings)
        if seconds is None:
            st.caption(tr("device.measuring"))
        else:
            st.caption(tr("mnist.estimate", seconds=max(seconds, 1), device=manager.info["device"]))

    watching = train_and_cancel("mnist", lab.KIND, spec, tr("mnist.train"), seconds)
    current = st.session_state.get("mnist_run_id")

with table:
    arch = st.session_state.mnist_arch
    layers = lab.layers_of(arch)
    st.markdown(f"**{tr('mnist.layers', arch=tr('arch.' + arch))}**")
    st.dataframe(layer_table_view(layers), hide_index=True, height=9 * 35 + 3, width="stretch")  # a header, 8 rows
    st.caption(tr("mnist.param_total", total=int(layers["parameters"].sum())))

st.session_state.mnist_saved = {f"mnist_{c.name}": st.session_state[f"mnist_{c.name}"]
                                for c in CONTROLS if c.name not in ("run", "replay")}
mirror_to_link(CONTROLS, {
    "arch": st.session_state.mnist_arch, "preset": st.session_state.mnist_preset,
    "epochs": st.session_state.mnist_epochs, "lr": spec.max_lr if spec else 0.1,
    "bs": st.session_state.mnist_bs, "opt": st.session_state.mnist_opt,
    "n_train": st.session_state.mnist_n_train, "seed": st.session_state.mnist_seed,
    "run": st.session_state.get("mnist_run_id") or "", "replay": replay_speed("mnist"),
})

st.divider()
past_runs = [run for run in all_runs if run["id"] != current]
compare_ids = st.multiselect(
    tr("mnist.compare"), [run["id"] for run in past_runs if run["state"] == "finished"],
    format_func=lambda rid: next(run_label(r) for r in past_runs if r["id"] == rid),
    key="mnist_compare", placeholder=tr("mnist.compare_placeholder"),
)


@st.fragment(run_every=LIVE_REFRESH_SECONDS if watching else None)
def live_panel() -> None:
    run_id = st.session_state.get("mnist_run_id")
    if not run_id:
        st.info(tr("mnist.press_train"), icon="👆")
        # Empty axes now: the student sees where the curves will come, and the browser has
        # loaded plotly before the first points arrive (that load takes about a second).
        st.plotly_chart(training_figure([], training_figure_labels()), width="stretch", key="mnist_chart")
        return
    view = run_view(run_id)
    status = show_run_state(view, epoch_progress,
                            lambda result: tr("mnist.finished", accuracy=result["accuracy"] * 100,
                                              seconds=result["seconds"], device=result["device"]),
                            run_key="mnist_run_id", polling=watching)
    if status is None:
        return
    state = view.state or status["state"]
    st.caption(tr("mnist.run_caption", run=run_id, state=tr(f"state.{state}"), points=len(view.rows)),
               help=tr("mnist.run_caption_help"))

    runs = [(tr("mnist.this_run"), view.frame())]
    runs += [(run_label(manager.status(rid) or {"id": rid, "spec": {}}), run_view(rid).frame()) for rid in compare_ids]
    chart, samples = st.columns([2, 1.1], gap="medium")
    with chart:
        st.plotly_chart(training_figure(runs, training_figure_labels()), width="stretch", key="mnist_chart")
        st.caption(tr("mnist.chart_caption"))
    with samples:
        st.markdown(f"**{tr('mnist.samples')}**")
        if view.sample_png:
            st.image(view.sample_png, width="stretch")
        st.caption(tr("mnist.samples_caption"))
    if view.result:
        matrix, facts = st.columns([1.2, 1])
        with matrix:
            st.markdown(f"**{tr('mnist.confusion')}**")
            st.plotly_chart(confusion_figure(view.result["confusion"], {
                "predicted": tr("chart.predicted"), "actual": tr("chart.actual"), "hover": tr("chart.confusion_hover"),
            }), width="stretch", key="mnist_confusion")
        with facts:
            st.metric(tr("mnist.final_accuracy"), f"{view.result['accuracy']:.2%}")
            st.caption(tr("mnist.confusion_caption"))
    if watching and not view.active:
        st.rerun()  # the run ended: redraw the whole page so Train is enabled again


live_panel()

with st.expander(tr("mnist.all_runs")):
    if all_runs:
        listing = pd.DataFrame([{
            tr("runs.id"): run["id"], tr("runs.when"): when(run["created"]),
            tr("runs.model"): tr("arch." + run["spec"]["arch"]), tr("runs.preset"): tr("preset." + run["spec"]["preset"]),
            tr("runs.epochs"): run["spec"]["epochs"], tr("runs.lr"): run["spec"]["max_lr"],
            tr("runs.state"): tr("state." + run["state"]),
            tr("runs.accuracy"): f"{run['result']['accuracy']:.2%}" if run["result"] else "",
        } for run in all_runs])
        st.dataframe(listing, hide_index=True, width="stretch")
        chosen = st.selectbox(tr("runs.open"), [""] + [run["id"] for run in past_runs], key="mnist_open")
        if chosen and st.button(tr("runs.open_button")):
            st.session_state.mnist_run_id = chosen
            st.rerun()
    else:
        st.caption(tr("runs.none"))

with st.expander(tr("mnist.code")):
    if spec:
        st.code(mnist_snippet(spec.arch, spec.epochs, spec.max_lr, spec.batch_size, spec.optimizer), language="python")

share_link("mnist")
