"""Convolution lab (Part 2, Lessons 12–13; Part 1, Lesson 7): the sliding window, the transposed
convolution two ways, the spreadsheet deconvolution, checkerboard artefacts and a shape tracer."""
import re

import streamlit as st

from core import checkerboard_lab as checker
from core import shape_tracer as tracer
from core.controls import Control
from core.run_view import MAX_REPLAY_SPEED
from ui import conv_sections as sections
from ui.common import (keep_widgets, lab_tabs, mirror_to_link, page_header, replay_speed, settings_from_link,
                       share_link, tr)


def within(name: str):
    low, high = sections.LIMITS[name]
    return lambda value: low <= value <= high


TABS = ("window", "transposed", "sheet", "checker", "tracer")
QUICK_TABS = ("window", "transposed")  # their sliders rerun only the tab: see redraw_alone
CONTROLS = (  # the first is a widget's: it is gone when the student comes back from another page
    Control("n", 5, accept=within("n")),
    Control("k", 3, accept=within("k")),
    Control("s", 2, accept=within("s")),
    Control("p", 1, accept=within("p")),
    Control("d", 1, accept=within("d")),
    Control("op", 1, accept=within("op")),
    Control("seed", 0, accept=lambda v: 0 <= v < 1000),
    Control("ck", 3, accept=within("ck")),
    Control("cs", 2, accept=within("cs")),
    Control("cn", 5, accept=within("cn")),
    Control("preset", "quick", checker.PRESETS),
    Control("tpreset", "mnist_cnn", tuple(tracer.PRESETS)),
    Control("tab", "window", TABS),
    Control("run", "", accept=lambda v: re.fullmatch(r"[0-9a-f]{10}", v) is not None),
    Control("replay", 0.0, accept=lambda v: 0 <= v <= MAX_REPLAY_SPEED),
)
WIDGETS = tuple(c.name for c in CONTROLS if c.name not in ("run", "replay"))


def load_settings() -> None:
    values = settings_from_link("conv", CONTROLS, checker.KIND)
    if not values:
        return
    for name in WIDGETS:
        st.session_state[f"conv_{name}"] = values[name]


def settings_now() -> dict:
    return {**{name: st.session_state[f"conv_{name}"] for name in WIDGETS},
            "run": st.session_state.get("conv_run_id") or "", "replay": replay_speed("conv")}


def remember() -> None:
    """Keep the settings for a return to the page, and in the link."""
    st.session_state.conv_saved = {f"conv_{name}": st.session_state[f"conv_{name}"] for name in WIDGETS}
    mirror_to_link(CONTROLS, settings_now())


def redraw_alone(draw_tab) -> None:
    """A tab, then its settings kept. The quick tabs run as fragments: a slider there reruns only the tab,
    not the page and its sidebar (about 120 ms less per change on a 2-core server), so each tab keeps
    the link itself."""
    draw_tab()
    remember()


load_settings()
# the tabs not shown this time keep their settings
keep_widgets([f"conv_{name}" for name in WIDGETS] + ["conv_tshape"])
page_header(tr("conv.title"), tr("conv.intro"), st.session_state.pop("conv_ignored", []))

name, tab = lab_tabs("conv", {name: tr(f"conv.tab.{name}") for name in TABS}, run_tab="checker")
with tab:
    draw_tab = getattr(sections, f"{name}_tab")
    if name in QUICK_TABS:
        st.fragment(redraw_alone)(draw_tab)
    else:
        redraw_alone(draw_tab)

share_link("convolutions")
