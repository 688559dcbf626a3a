"""Style transfer lab (Part 2, Lesson 13): what a Gram matrix keeps of a picture, what each layer of a pretrained
network keeps, and a photo painted in the style of a painting."""
import re

import streamlit as st

from core.controls import Control
from core.run_view import MAX_REPLAY_SPEED
from core.vision import backbone as backbones
from core.vision import style
from core.vision.images import is_known
from ui import style_sections as sections
from ui.common import (keep_widgets, lab_tabs, mirror_to_link, page_header, replay_speed, route_run_to_tab,
                       settings_from_link, share_link, tr)

TABS = sections.TABS
BEST = backbones.best_available()
CONTROLS = (  # the first is a widget's: it is gone when the student comes back from another page
    Control("backbone", BEST, backbones.BACKBONES, accept=lambda v: v in backbones.available()),
    Control("image", "chelsea", accept=is_known),
    Control("layer", 3, accept=lambda v: 1 <= v <= style.LAYERS),
    Control("other", "starry_night", accept=is_known),
    Control("pieces", 4, accept=lambda v: 1 <= v <= 16),
    Control("rmode", "content", ("content", "style")),
    Control("rlayer", 4, accept=lambda v: 1 <= v <= style.LAYERS),
    Control("content", "chelsea", accept=is_known),
    Control("style", "starry_night", accept=is_known),
    Control("cw", sections.weight_exponents(BEST)[0], accept=lambda v: v in sections.CONTENT_EXPONENTS),
    Control("sw", sections.weight_exponents(BEST)[1], accept=lambda v: v in sections.STYLE_EXPONENTS),
    Control("w", "1,1,1,1,1", accept=lambda v: re.fullmatch(r"(\d+(\.\d+)?,){4}\d+(\.\d+)?", v) is not None
            and all(float(w) <= 10 for w in v.split(","))),
    Control("start", "noise", style.STARTS),
    Control("preset", "demo", style.PRESETS),
    Control("opt", "lbfgs", style.OPTIMIZERS),
    Control("steps", style.PRESET_STEPS["demo"], accept=lambda v: 1 <= v <= style.MAX_STEPS),
    Control("lr", style.DEFAULT_LR["lbfgs"], accept=lambda v: 0 < v <= max(style.MAX_LR.values())),
    Control("tab", "gram", TABS),
    Control("run", "", accept=lambda v: re.fullmatch(r"[0-9a-f]{10}", v) is not None),
    Control("replay", 0.0, accept=lambda v: 0 <= v <= MAX_REPLAY_SPEED),
)
WIDGETS = tuple(c.name for c in CONTROLS if c.name not in ("run", "replay", "w"))  # "w": a box per block
KEPT = [f"sty_{name}" for name in WIDGETS] + [f"sty_w{i}" for i in range(1, style.LAYERS + 1)] + ["sty_uploads"]


def load_settings() -> None:
    values = settings_from_link("sty", CONTROLS, style.KIND)
    if not values:
        return
    for name in WIDGETS:
        st.session_state[f"sty_{name}"] = values[name]
    st.session_state.sty_lr = f"{values['lr']:g}"  # a text box
    for i, weight in enumerate(values["w"].split(","), start=1):
        st.session_state[f"sty_w{i}"] = float(weight)
    st.session_state.sty_uploads = [key for key in (values["image"], values["other"], values["content"],
                                                    values["style"]) if key.startswith("upload:")]


def settings_now() -> dict:
    values = {name: st.session_state[f"sty_{name}"] for name in WIDGETS}
    try:
        values["lr"] = float(values["lr"])
    except ValueError:  # the page says what is wrong with it; the link keeps the default meanwhile
        values["lr"] = style.DEFAULT_LR["lbfgs"]
    shown = "rec" if values["tab"] == "layers" else "sty"
    return {**values, "w": ",".join(f"{w:g}" for w in sections.layer_weights()),
            "run": st.session_state.get(f"{shown}_run_id") or "", "replay": replay_speed(shown)}


load_settings()
# a run that rebuilds a picture from one layer belongs to the layers tab, which keeps it beside the transfer's
route_run_to_tab("sty", "rec", "layers", lambda status: status.get("spec", {}).get("mode") in ("content", "style"))
sections.apply_pending_uploads()
keep_widgets(KEPT)  # the tabs not shown this time keep their settings
page_header(tr("style.title"), tr("style.intro"), st.session_state.pop("sty_ignored", []))
backbone = sections.backbone_panel()

name, tab = lab_tabs("sty", {name: tr(f"style.tab.{name}") for name in TABS}, run_tab="transfer")
with tab:  # only the open tab runs (its widgets' values are kept above)
    getattr(sections, f"{name}_tab")(backbone)

st.session_state.sty_saved = {key: st.session_state[key] for key in KEPT if key in st.session_state}
mirror_to_link(CONTROLS, settings_now())
share_link("style")
