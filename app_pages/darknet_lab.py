"""Architecture lab (Part 2, Lessons 12-13): Darknet on CIFAR-10 with the DAWNBench recipe."""
import functools
import re

import pandas as pd
import streamlit as st

from core import darknet_lab as lab
from core.controls import Control
from core.run_view import MAX_REPLAY_SPEED
from core.errors import UserError
from core.models.inception import InceptionResNetB, inception_stem
from core.summary import layer_table
from core.viz import training_figure
from ui.common import (LIVE_REFRESH_SECONDS,
                       cached_run_view, checked, epoch_progress, job_manager, layer_table_view, mirror_to_link,
                       page_header, replay_speed, settings_from_link, share_link, show_run_state, tr, train_and_cancel,
                       training_figure_labels)

CONTROLS = (
    Control("preset", "demo", lab.PRESETS),
    Control("blocks", "1, 1, 1, 1", accept=lambda v: _is_blocks(v)),
    Control("nf", 8, lab.WIDTHS),
    Control("epochs", 4, accept=lambda v: 1 <= v <= lab.MAX_EPOCHS),
    Control("lr", 0.4, accept=lambda v: lab.MIN_LR <= v <= lab.MAX_LR),
    Control("bs", 128, accept=lambda v: 2 <= v <= 2048),
    Control("amp", 1, (0, 1)),
    Control("cl", 1, (0, 1)),
    Control("compile", 0, (0, 1)),
    Control("run", "", accept=lambda v: re.fullmatch(r"[0-9a-f]{10}", v) is not None),
    Control("replay", 0.0, accept=lambda v: 0 <= v <= MAX_REPLAY_SPEED),
)
WIDGETS = ("preset", "blocks", "nf", "epochs", "lr", "bs", "amp", "cl", "compile")
manager = job_manager()


def _is_blocks(text: str) -> bool:
    try:
        return bool(lab.blocks_from_text(text))
    except UserError:
        return False


def load_settings() -> None:
    values = settings_from_link("dark", CONTROLS, lab.KIND)
    for name in WIDGETS if values else ():
        st.session_state[f"dark_{name}"] = bool(values[name]) if name in ("amp", "cl", "compile") else values[name]


def apply_preset() -> None:
    spec = lab.preset_spec(st.session_state.dark_preset)
    st.session_state.update(dark_blocks=", ".join(str(b) for b in spec.blocks), dark_nf=spec.nf,
                            dark_epochs=spec.epochs, dark_lr=spec.max_lr, dark_bs=spec.batch_size)


def spec_from_widgets() -> lab.DarknetSpec:
    preset = lab.preset_spec(st.session_state.dark_preset)
    return lab.validate(lab.DarknetSpec(
        preset=preset.preset, blocks=lab.blocks_from_text(st.session_state.dark_blocks), nf=int(st.session_state.dark_nf),
        epochs=int(st.session_state.dark_epochs), max_lr=float(st.session_state.dark_lr),
        batch_size=int(st.session_state.dark_bs), n_train=preset.n_train, bn_momentum=preset.bn_momentum,
        mixed_precision=bool(st.session_state.dark_amp), channels_last=bool(st.session_state.dark_cl),
        compile_model=bool(st.session_state.dark_compile),
    ))


run_view = functools.partial(cached_run_view, "dark")


@st.cache_resource(show_spinner=False)
def inception_facts() -> dict:
    """Layer tables of Inception's stem (299 px in) and an Inception-ResNet-B block (1088x17x17 in)."""
    return {"stem": layer_table(inception_stem(), (1, 3, 299, 299)),
            "block": layer_table(InceptionResNetB(), (1, 1088, 17, 17))}


load_settings()
synthetic = manager.info.get("cifar_synthetic")
page_header(tr("dark.title"), tr("dark.intro"), st.session_state.pop("dark_ignored", []))
if synthetic:
    st.warning(tr("dark.synthetic"), icon="🧪")

settings, facts_col = st.columns([1, 1.3], gap="large")
with settings:
    st.radio(tr("mnist.preset"), lab.PRESETS, key="dark_preset", horizontal=True, on_change=apply_preset,
             format_func=lambda p: tr(f"preset.{p}"), help=tr("dark.preset_help"))
    st.text_input(tr("dark.blocks"), key="dark_blocks", help=tr("dark.blocks_help"))
    left, right = st.columns(2)
    left.selectbox(tr("dark.nf"), lab.WIDTHS, key="dark_nf", help=tr("dark.nf_help"))
    right.number_input(tr("mnist.epochs"), min_value=1, max_value=lab.MAX_EPOCHS, step=1, key="dark_epochs")
    left, right = st.columns(2)
    left.number_input(tr("dark.lr"), min_value=lab.MIN_LR, max_value=lab.MAX_LR, step=0.1, format="%g", key="dark_lr",
                      help=tr("dark.lr_help"))
    right.number_input(tr("mnist.batch"), min_value=2, max_value=2048, step=64, key="dark_bs")
    left, right = st.columns(2)
    left.toggle(tr("dark.amp"), key="dark_amp", help=tr("dark.gpu_only_help"))
    right.toggle(tr("dark.channels_last"), key="dark_cl", help=tr("dark.gpu_only_help"))
    left.toggle(tr("dark.compile"), key="dark_compile", help=tr("dark.compile_help"))

    spec, seconds = checked(spec_from_widgets), None
    if spec is not None:
        train_size, valid_size = manager.info.get("cifar_sizes", (50_000, 10_000))
        seconds = lab.estimate_seconds(spec, manager.info.get("darknet_seconds_per_image", {}), train_size, valid_size)
        if seconds is None:
            st.caption(tr("device.measuring"))
        else:
            st.caption(tr("dark.estimate", minutes=seconds / 60, seconds=seconds, device=manager.info.get("device", "")))
            if seconds > 300:
                st.warning(tr("dark.too_long"), icon="⏳")

    watching = train_and_cancel("dark", lab.KIND, spec, tr("dark.train"), seconds)

with facts_col:
    if spec is not None:
        facts = lab.model_facts(spec.blocks, spec.nf)
        st.markdown(f"**{tr('dark.layers', blocks=', '.join(map(str, spec.blocks)), nf=spec.nf)}**")
        st.dataframe(layer_table_view(facts["table"]), hide_index=True, height=9 * 35 + 3, width="stretch")
        one, two = st.columns(2)
        one.metric(tr("dark.parameters"), f"{facts['parameters']:,}")
        two.metric(tr("dark.macs"), f"{facts['macs'] / 1e6:,.1f} M")
        st.caption(tr("dark.facts_caption"))
        st.caption(tr("dark.zero_init"))
    with st.expander(tr("dark.inception")):
        inception = inception_facts()
        st.write(tr("dark.inception_intro"))
        for key in ("stem", "block"):
            st.markdown(f"**{tr(f'dark.inception_{key}')}**")
            st.dataframe(layer_table_view(inception[key]), hide_index=True, height=7 * 35 + 3, width="stretch")

st.session_state.dark_saved = {f"dark_{name}": st.session_state[f"dark_{name}"] for name in WIDGETS}
mirror_to_link(CONTROLS, {
    "preset": st.session_state.dark_preset, "blocks": st.session_state.dark_blocks, "nf": st.session_state.dark_nf,
    "epochs": st.session_state.dark_epochs, "lr": float(st.session_state.dark_lr), "bs": st.session_state.dark_bs,
    "amp": int(st.session_state.dark_amp), "cl": int(st.session_state.dark_cl),
    "compile": int(st.session_state.dark_compile),
    "run": st.session_state.get("dark_run_id") or "", "replay": replay_speed("dark"),
})
st.divider()


@st.fragment(run_every=LIVE_REFRESH_SECONDS if watching else None)
def live_panel() -> None:
    run_id = st.session_state.get("dark_run_id")
    if not run_id:
        st.info(tr("dark.press_train"), icon="👆")
        return
    view = run_view(run_id)
    if show_run_state(view, epoch_progress, finished_text, run_key="dark_run_id", polling=watching) is None:
        return
    latest = view.latest
    speed, memory, _ = st.columns(3)
    if latest.get("images_per_second"):
        speed.metric(tr("dark.images_per_second"), f"{latest['images_per_second']:,.0f}")
    if latest.get("gpu_memory_mb"):
        memory.metric(tr("dark.gpu_memory"), f"{latest['gpu_memory_mb']:,.0f} MB")
    chart, samples = st.columns([2, 1.1], gap="medium")
    with chart:
        st.plotly_chart(training_figure([(tr("mnist.this_run"), view.frame())], training_figure_labels()), width="stretch",
                        key="dark_chart")
    with samples:
        st.markdown(f"**{tr('dark.samples')}**")
        if view.sample_png:
            st.image(view.sample_png, width="stretch")
        st.caption(tr("dark.samples_caption"))
    if view.result:
        dawnbench_panel(view.result)
    if watching and not view.active:
        st.rerun()


def finished_text(result: dict) -> str:
    data = tr("dark.data_real") if result.get("synthetic") is False else tr("dark.data_synthetic")
    return tr("dark.finished", accuracy=result.get("accuracy", 0) * 100, seconds=result.get("seconds", 0),
              device=result.get("device", "?"), data=data)


def dawnbench_panel(result: dict) -> None:
    st.markdown(f"**{tr('dark.dawnbench')}**")
    if result.get("synthetic") is not False:  # no claim unless the result says it was real CIFAR-10
        ours = tr("dark.dawn_synthetic")
    elif result.get("seconds_to_target") is None:
        ours = tr("dark.dawn_not_reached", accuracy=result.get("accuracy", 0) * 100)
    else:
        ours = tr("dark.dawn_reached", seconds=result["seconds_to_target"])
    rows = [{tr("dark.dawn_who"): tr("dark.dawn_this_run"), tr("dark.dawn_time"): ours,
             tr("dark.dawn_hardware"): result.get("device", "?"), tr("dark.dawn_source"): tr("dark.dawn_measured")}]
    rows += [{tr("dark.dawn_who"): record["who"], tr("dark.dawn_time"): f"{record['seconds']:g} s",
              tr("dark.dawn_hardware"): record["hardware"], tr("dark.dawn_source"): record["source"]}
             for record in lab.RECORDS]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    st.caption(tr("dark.dawn_caption"))


live_panel()

share_link("darknet")
