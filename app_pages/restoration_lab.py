"""Image restoration lab (Part 1, Lesson 7): crappify photos, look inside a U-Net, train it to restore them in the
lesson's three stages (pixel MSE, feature loss, GAN critic), and restore a photo of your own."""
import re

import streamlit as st

from core.controls import Control
from core.models.unet import UPSAMPLERS, available_encoders
from core.run_view import MAX_REPLAY_SPEED
from core.vision import restore, restore_data
from core.vision.crappify import LESSON_QUALITY, LESSON_SHORT_SIDE
from core.vision.images import is_known
from ui import restoration_sections as sections
from ui.common import (keep_widgets, lab_tabs, mirror_to_link, page_header, replay_speed, settings_from_link,
                       share_link, tr)

TABS = sections.TABS
DEMO = restore.PRESET_VALUES["demo"]
CONTROLS = (  # the first is a widget's: it is gone when the student comes back from another page
    Control("photo", "chelsea", accept=is_known),
    Control("short", LESSON_SHORT_SIDE, accept=lambda v: 16 <= v <= 512),
    Control("qlow", LESSON_QUALITY[0], accept=lambda v: 1 <= v <= 95),
    Control("qhigh", LESSON_QUALITY[1], accept=lambda v: 1 <= v <= 95),
    Control("number", 1, (0, 1)),
    Control("seed", 0, accept=lambda v: 0 <= v < 2**31),
    Control("encoder", available_encoders()[0], accept=lambda v: v in available_encoders()),
    Control("up", "pixel_shuffle", tuple(UPSAMPLERS)),
    Control("tsize", 128, sections.TABLE_SIZES),
    Control("preset", "demo", restore.PRESETS),
    *(Control(field, DEMO[field], accept=lambda v: 0 <= v <= restore.MAX_STEPS) for field in sections.STEP_FIELDS),
    Control("lr", restore.LESSON_LR, sections.LR_CHOICES),
    Control("glr", restore.LESSON_GAN_LR, sections.GAN_LR_CHOICES),
    Control("photos", restore_data.SHIPPED, accept=lambda v: v in sections.photo_sets()),
    Control("tenc", 0, (0, 1)),
    Control("rphoto", "chelsea", accept=is_known),
    Control("rseed", 0, accept=lambda v: 0 <= v < 2**31),
    Control("tab", "crappify", TABS),
    Control("run", "", accept=lambda v: re.fullmatch(r"[0-9a-f]{10}", v) is not None),
    Control("replay", 0.0, accept=lambda v: 0 <= v <= MAX_REPLAY_SPEED),
)
# widgets with a link setting of their own; the quality range is one slider for two settings
WIDGETS = tuple(c.name for c in CONTROLS if c.name not in ("run", "replay", "qlow", "qhigh"))
KEPT = [f"rst_{name}" for name in WIDGETS] + ["rst_quality", "rst_model", sections.UPLOADS]


def load_settings() -> None:
    values = settings_from_link("rst", CONTROLS, restore.KIND)
    if not values:
        return
    for name in WIDGETS:
        st.session_state[f"rst_{name}"] = values[name]
    for field in sections.STEP_FIELDS:  # a link that names a preset and no steps means the preset's steps
        if field not in st.query_params or field in st.session_state.get("rst_ignored", []):
            st.session_state[f"rst_{field}"] = restore.PRESET_VALUES[values["preset"]][field]
    st.session_state.rst_number, st.session_state.rst_tenc = bool(values["number"]), bool(values["tenc"])
    low, high = sorted((values["qlow"], values["qhigh"]))
    st.session_state.rst_quality = (low, high)
    st.session_state[sections.UPLOADS] = [values[k] for k in ("photo", "rphoto") if values[k].startswith("upload:")]


def settings_now() -> dict:
    values = {name: st.session_state[f"rst_{name}"] for name in WIDGETS}
    values["number"], values["tenc"] = int(values["number"]), int(values["tenc"])
    values["qlow"], values["qhigh"] = st.session_state.rst_quality
    return {**values, "run": st.session_state.get("rst_run_id") or "", "replay": replay_speed("rst")}


load_settings()
sections.apply_pending_uploads(sections.PICKERS)
keep_widgets(KEPT)  # the tabs not shown this time keep their settings
page_header(tr("restore.title"), tr("restore.intro"), st.session_state.pop("rst_ignored", []))

name, tab = lab_tabs("rst", {name: tr(f"restore.tab.{name}") for name in TABS}, run_tab="train")
with tab:  # only the open tab runs (its widgets' values are kept above)
    getattr(sections, f"{name}_tab")()

st.session_state.rst_saved = {key: st.session_state[key] for key in KEPT if key in st.session_state}
mirror_to_link(CONTROLS, settings_now())
share_link("restoration")
