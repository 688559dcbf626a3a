"""RNN lab (Part 1, Lesson 7): human numbers, how a language model's batches are cut, the loop
unrolled word by word, and Model0 to Model5 trained live."""
import re

import streamlit as st

from core import rnn_lab as lab
from core.controls import Control
from core.run_view import MAX_REPLAY_SPEED
from ui import rnn_sections as sections
from ui.common import (keep_widgets, lab_tabs, mirror_to_link, page_header, replay_speed, settings_from_link,
                       share_link, tr)

TABS = ("data", "batches", "unroll", "train")
CONTROLS = (
    Control("model", "model0", lab.MODELS),
    Control("tab", "data", TABS),
    Control("preset", "demo", lab.PRESETS),
    Control("epochs", 3, accept=lambda v: 1 <= v <= lab.MAX_EPOCHS),
    Control("lr", 1e-4, accept=lambda v: 0 < v <= lab.MAX_LR),
    Control("pct", 0.3, accept=lambda v: 0 < v < 1),
    Control("bs", lab.LESSON_BS, accept=lambda v: 2 <= v <= lab.MAX_BS),
    Control("bptt", 3, accept=lambda v: 1 <= v <= lab.MAX_BPTT),
    Control("rand", 0, (0, 1)),
    Control("nh", lab.LESSON_NH, accept=lambda v: 2 <= v <= lab.MAX_NH),
    Control("seed", 0, accept=lambda v: 0 <= v < 2**31),
    Control("vbs", sections.VIEW_BS, accept=lambda v: sections.MIN_VIEW_BS <= v <= sections.MAX_VIEW_BS),
    Control("vbptt", sections.VIEW_BPTT, accept=lambda v: 2 <= v <= sections.MAX_VIEW_BPTT),
    Control("vrand", 1, (0, 1)),
    Control("number", sections.STEP_NUMBER, accept=lambda v: 8001 <= v <= 9999),
    Control("run", "", accept=lambda v: re.fullmatch(r"[0-9a-f]{10}", v) is not None),
    Control("replay", 0.0, accept=lambda v: 0 <= v <= MAX_REPLAY_SPEED),
)
WIDGETS = tuple(c.name for c in CONTROLS if c.name not in ("run", "replay"))
DEFAULTS = {c.name: c.default for c in CONTROLS}
BOOLEANS = ("rand", "vrand")


def load_settings() -> None:
    """First visit: the link's settings; the training ones it leaves out are its model's preset's."""
    values = settings_from_link("rnn", CONTROLS, lab.KIND)
    if not values:
        return
    values = lab.link_settings_with_preset(values, given=set(st.query_params))
    for name in WIDGETS:
        st.session_state[f"rnn_{name}"] = bool(values[name]) if name in BOOLEANS else values[name]
    st.session_state.rnn_lr = str(values["lr"])  # a text box: "3e-3" is as good as 0.003


def settings_now() -> dict:
    """The page's settings as the link writes them."""
    values = {name: st.session_state[f"rnn_{name}"] for name in WIDGETS}
    try:
        values["lr"] = float(values["lr"])
    except ValueError:  # the page says what is wrong with it; the link keeps the default meanwhile
        values["lr"] = DEFAULTS["lr"]
    return {**values, **{name: int(values[name]) for name in BOOLEANS},
            "run": st.session_state.get("rnn_run_id") or "", "replay": replay_speed("rnn")}


load_settings()
# the tabs not shown this time keep their settings
keep_widgets([f"rnn_{name}" for name in (*WIDGETS, "vbatch", "vcolumn", "any_number", "compare")])
page_header(tr("rnn.title"), tr("rnn.intro"), st.session_state.pop("rnn_ignored", []))

st.selectbox(tr("rnn.model"), lab.MODELS, key="rnn_model", format_func=lambda m: tr(f"rnn.name.{m}"),
             on_change=sections.apply_preset, help=tr("rnn.model_help"))
st.caption(tr(f"rnn.what.{st.session_state.rnn_model}"))

name, tab = lab_tabs("rnn", {name: tr(f"rnn.tab.{name}") for name in TABS}, run_tab="train")
with tab:  # only the open tab runs (its widgets' values are kept above)
    getattr(sections, f"{name}_tab")()

st.session_state.rnn_saved = {f"rnn_{name}": st.session_state[f"rnn_{name}"] for name in WIDGETS}
mirror_to_link(CONTROLS, settings_now())
share_link("rnn")
