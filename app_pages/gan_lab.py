"""GAN lab (Part 2, Lesson 12): DCGAN and WGAN on real digits, CycleGAN between two domains, and progressive
growing's fade-in."""
import re

import streamlit as st

from core.data.domains import SOURCES
from core.controls import Control
from core.gan import cyclegan, dcgan
from core.run_view import MAX_REPLAY_SPEED
from ui import gan_sections as sections
from ui.common import (keep_widgets, lab_tabs, mirror_to_link, page_header, replay_speed, route_run_to_tab,
                       settings_from_link, share_link, tr)

TABS = ("dcgan", "cycle", "fade")
KINDS = (dcgan.KIND, cyclegan.KIND)
CONTROLS = (  # the first is a widget's: it is gone when the student comes back from another page
    Control("loss", "dcgan", dcgan.LOSSES),
    Control("preset", "demo", dcgan.PRESETS),
    Control("width", 32, sections.WIDTHS),
    Control("steps", dcgan.preset_spec().steps, accept=lambda v: 1 <= v <= dcgan.MAX_STEPS),
    Control("lr", 2e-4, accept=lambda v: 0 < v <= dcgan.MAX_LR),
    Control("seed", 0, accept=lambda v: 0 <= v < 2**31),
    Control("source", "synthetic", SOURCES),
    Control("cpreset", "quick", cyclegan.PRESETS),
    Control("alpha", 0.5, accept=lambda v: 0 <= v <= 1),
    Control("tab", "dcgan", TABS),
    Control("run", "", accept=lambda v: re.fullmatch(r"[0-9a-f]{10}", v) is not None),
    Control("replay", 0.0, accept=lambda v: 0 <= v <= MAX_REPLAY_SPEED),
)
WIDGETS = tuple(c.name for c in CONTROLS if c.name not in ("run", "replay"))


def load_settings() -> None:
    values = settings_from_link("gan", CONTROLS, KINDS)
    if not values:
        return
    for name in WIDGETS:
        st.session_state[f"gan_{name}"] = values[name]
    st.session_state.gan_lr = f"{values['lr']:g}"  # a text box: "2e-4" is as good as 0.0002


def settings_now() -> dict:
    values = {name: st.session_state[f"gan_{name}"] for name in WIDGETS}
    try:
        values["lr"] = float(values["lr"])
    except ValueError:  # the page says what is wrong with it; the link keeps the default meanwhile
        values["lr"] = 2e-4
    shown = "cyc" if values["tab"] == "cycle" else "gan"
    return {**values, "run": st.session_state.get(f"{shown}_run_id") or "", "replay": replay_speed(shown)}


load_settings()
# a CycleGAN run belongs to its own tab, which keeps it beside the DCGAN tab's run
route_run_to_tab("gan", "cyc", "cycle", lambda status: status.get("kind") == cyclegan.KIND)
# the tabs not shown this time keep their settings
keep_widgets([f"gan_{name}" for name in WIDGETS] + ["gan_from", "gan_to"])
page_header(tr("gan.title"), tr("gan.intro"), st.session_state.pop("gan_ignored", []))

name, tab = lab_tabs("gan", {name: tr(f"gan.tab.{name}") for name in TABS}, run_tab="dcgan")
with tab:  # only the open tab runs (its widgets' values are kept above)
    getattr(sections, f"{name}_tab")()

st.session_state.gan_saved = {f"gan_{name}": st.session_state[f"gan_{name}"] for name in WIDGETS}
mirror_to_link(CONTROLS, settings_now())
share_link("gans")
