"""Bias lab (Part 2, Lesson 13, ethics): COMPAS cross-tabs and error rates, Gender Shades, bias
amplification, a runaway feedback loop, and an MNIST model trained here with one digit made scarce."""
import re

import streamlit as st

from core import bias_sims, fairness
from core.controls import Control
from ui import bias_sections as sections
from ui.common import (job_manager, keep_widgets, lab_tabs, mirror_to_link, page_header, run_from_link,
                       settings_from_link, share_link, tr)

def is_run_id(value: str) -> bool:
    return re.fullmatch(r"[0-9a-f]{10}", value) is not None


CONTROLS = (
    Control("tab", "compas", sections.TABS),
    Control("by", "race", fairness.GROUPINGS),
    Control("rows", "score_text", fairness.RISK_ROWS),
    Control("threshold", fairness.HIGHER_RISK_DECILE, accept=lambda v: 1 <= v <= 10),
    Control("share", bias_sims.LESSON_TRAIN_SHARE, accept=lambda v: 0.5 <= v <= 0.95),
    Control("cue", 0.4, accept=lambda v: 0.1 <= v <= 3),
    Control("rule", "hotspot", bias_sims.FEEDBACK_RULES),
    Control("days", 60, accept=lambda v: 0 <= v <= sections.MAX_DAYS),
    Control("rate_a", 0.1, accept=lambda v: 0.02 <= v <= 0.3),
    Control("rate_b", 0.1, accept=lambda v: 0.02 <= v <= 0.3),
    Control("digit", 5, tuple(range(10))),
    Control("keep", 10, accept=lambda v: 1 <= v <= 100),
    Control("size", "quick", accept=lambda v: v in sections.PRESET_BASELINES or is_run_id(v)),  # or a run's id
    Control("base", "", accept=is_run_id),
    Control("rare", "", accept=is_run_id),
)
WIDGETS = tuple(c.name for c in CONTROLS if c.name not in ("base", "rare"))


def load_settings() -> None:
    """First visit: the link's settings, and the experiment's two runs when it names them."""
    values = settings_from_link("bias", CONTROLS, ())
    if not values:
        return
    for name in WIDGETS:
        st.session_state[f"bias_{name}"] = values[name]
    ignored = st.session_state.bias_ignored
    for name in ("base", "rare"):
        run_id = run_from_link(values[name], "mnist", ignored)
        status = job_manager().status(run_id) if run_id else None
        if run_id and status is None:  # not a run this server knows
            ignored.append(name)
        st.session_state[f"bias_{name}_run_id"] = run_id if status else None
    if status:  # a link to an experiment: show it, with the digit and share it was trained with
        st.session_state.bias_tab = "model"
        spec = status["spec"] or {}
        if spec.get("scarce_digit", -1) >= 0:
            st.session_state.bias_digit = spec["scarce_digit"]
            st.session_state.bias_keep = min(100, max(1, round(100 * spec["scarce_keep"])))


load_settings()
keep_widgets([f"bias_{name}" for name in WIDGETS])  # the tabs not shown this time keep their settings
page_header(tr("bias.title"), tr("bias.intro"), st.session_state.pop("bias_ignored", []))

name, tab = lab_tabs("bias", {name: tr(f"bias.tab.{name}") for name in sections.TABS}, run_tab="model")
with tab:  # only the open tab runs
    getattr(sections, f"{name}_tab")()

st.session_state.bias_saved = {f"bias_{name}": st.session_state[f"bias_{name}"] for name in WIDGETS}
mirror_to_link(CONTROLS, {**{name: st.session_state[f"bias_{name}"] for name in WIDGETS},
                          "base": st.session_state.get("bias_base_run_id") or "",
                          "rare": st.session_state.get("bias_rare_run_id") or ""})
share_link("bias")
