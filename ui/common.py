"""Streamlit glue shared by the pages: the job manager, the language, messages."""
from __future__ import annotations

import uuid
from typing import Any, Callable

import streamlit as st
import torch

from core.controls import Control, read_query, to_query
from core.errors import UserError
from core.i18n import DEFAULT_LANGUAGE, LANGUAGES, t, t_message
from core.jobs import WARMED_UP, JobManager
from core.labs import RUNNERS
from core.run_view import RunView
from core.runs import RunStore


# The server process only draws layer tables; training happens in the worker process,
# whose two CPU threads should not have to compete with a second pool here.
torch.set_num_threads(1)


@st.cache_resource(show_spinner=False)
def job_manager() -> JobManager:
    """One per server process, shared by every browser session (its worker warms up at once)."""
    return JobManager(RunStore(), RUNNERS)


def language() -> str:
    lang = st.session_state.get("lang")
    return lang if lang in LANGUAGES else DEFAULT_LANGUAGE


def tr(key: str, **params) -> str:
    """``t`` in the reader's language."""
    return t(key, language(), **params)


def session_id() -> str:
    """An id for this browser session: quotas and 'your runs' are per session."""
    if "session_id" not in st.session_state:
        st.session_state.session_id = uuid.uuid4().hex
    return st.session_state.session_id


def show_user_error(error: UserError) -> None:
    st.error(tr(error.key, **error.params), icon="✋")


def checked(build_spec: Callable[[], Any]) -> Any | None:
    """The spec the widgets describe, or None after saying what to change."""
    try:
        return build_spec()
    except UserError as error:
        show_user_error(error)
        return None


def device_line() -> str:
    info = job_manager().info
    if "warm_up_error" in info:
        return tr("device.warm_up_failed", error=info["warm_up_error"])
    if not info:
        return tr("device.measuring")
    if info.get("device", "CPU") == "CPU":
        return tr("device.cpu")
    return tr("device.gpu", name=info["device"])


@st.fragment(run_every=1.0)
def _poll_worker() -> None:
    if job_manager().info.get(WARMED_UP):
        st.rerun()  # the whole page, now with the device name and every lab's time estimates


def wait_for_worker() -> None:
    """While the worker is still warming up (every lab's module in turn), check every second
    and redraw once all of them are ready."""
    if not job_manager().info.get(WARMED_UP):
        _poll_worker()


def settings_from_link(prefix: str, controls: tuple[Control, ...], kind: str) -> dict | None:
    """None when the page's widgets still hold their values, or got back the ones saved when the
    student left the page (Streamlit forgets the state of widgets that were not drawn). On a
    first visit: the link's values (bad ones are listed under ``<prefix>_ignored`` and shown by
    ``page_header``), and the link's run when it is one of this lab's."""
    if f"{prefix}_{controls[0].name}" in st.session_state:
        return None
    if f"{prefix}_saved" in st.session_state:
        st.session_state.update(st.session_state[f"{prefix}_saved"])
        return None
    values, ignored = read_query(controls, st.query_params)
    st.session_state[f"{prefix}_run_id"] = run_from_link(values.get("run", ""), kind, ignored)
    st.session_state[f"{prefix}_ignored"] = ignored
    return values


def page_header(title: str, intro: str, ignored_link_settings: list[str]) -> None:
    """A lab's title and what it is for, then one warning per link setting that was ignored."""
    st.title(title)
    st.write(intro)
    for name in ignored_link_settings:
        st.warning(tr("link.ignored", name=name), icon="🔗")


def run_from_link(run_id: str, kind: str, ignored: list[str]) -> str | None:
    """The link's run id if it names a run of this lab (an unknown id is kept: the page then
    says it does not know that run); a run of another lab is named among the ignored settings."""
    if not run_id:
        return None
    status = job_manager().status(run_id)
    if status is not None and status.get("kind") != kind:
        ignored.append("run")
        return None
    return run_id


def mirror_to_link(controls: tuple[Control, ...], values: dict) -> None:
    """Keep the page's settings in the URL, so that the link reproduces what is on screen."""
    wanted = to_query(controls, values)
    for control in controls:
        if control.name in wanted:
            if st.query_params.get(control.name) != wanted[control.name]:
                st.query_params[control.name] = wanted[control.name]
        elif control.name in st.query_params:
            del st.query_params[control.name]


def cached_run_view(prefix: str, run_id: str) -> RunView:
    """The page's view of a run (kept per browser session under ``<prefix>_views``), brought up to date."""
    views = st.session_state.setdefault(f"{prefix}_views", {})
    if run_id not in views:
        views[run_id] = RunView(run_id)
    return views[run_id].refresh(job_manager())


TRAINING_FIGURE_KEYS = ("loss", "accuracy", "lr", "momentum", "loss_axis", "accuracy_axis", "lr_axis",
                        "momentum_axis", "iteration", "train", "valid")


def training_figure_labels() -> dict:
    """The titles of ``core.viz.training_figure`` in the reader's language."""
    return {key: tr(f"chart.{key}") for key in TRAINING_FIGURE_KEYS}


def train_and_cancel(prefix: str, kind: str, spec, train_label: str) -> bool:
    """Train (disabled while the spec is bad or this session's run goes on) and Cancel (only for
    this session's own run). Returns whether the shown run is still going, for live panels."""
    manager = job_manager()
    current = st.session_state.get(f"{prefix}_run_id")
    watching = current is not None and cached_run_view(prefix, current).active  # maybe someone else's shared run
    mine = watching and current in manager.active_runs(session_id())
    if st.button(train_label, type="primary", disabled=spec is None or mine, width="stretch", key=f"{prefix}_train"):
        try:
            st.session_state[f"{prefix}_run_id"] = manager.submit(kind, spec.to_dict(), session_id())
            st.rerun()
        except UserError as error:
            show_user_error(error)
    if st.button(tr("mnist.cancel"), disabled=not mine, width="stretch", key=f"{prefix}_cancel"):
        manager.cancel(current, session_id())
        st.toast(tr("mnist.cancel_sent"))
    return watching


def epoch_progress(latest: dict) -> str:
    """Progress of a run counted in epochs, with its ETA."""
    return tr("mnist.progress", step=latest["step"], total=latest["total_steps"], epoch=latest["epoch"], eta=latest["eta"])


def show_run_state(view: RunView, progress_text: Callable[[dict], str],
                   finished_text: Callable[[dict], str]) -> dict | None:
    """One line on where a run is: its place in the queue, progress with an ETA, its result,
    why it failed, or that it stopped. Returns the run's status, or None (and says so) when
    no run has that id."""
    status = job_manager().status(view.run_id)
    if status is None:
        st.warning(tr("mnist.unknown_run", run=view.run_id))
        return None
    state, latest = view.state or status["state"], view.latest
    if state == "queued":
        st.info(tr("state.queued_at", position=status.get("queue_position") or 1), icon="⏳")
    elif state == "running" and latest:
        st.progress(min(1.0, latest["step"] / latest["total_steps"]), text=progress_text(latest))
    elif state == "running":
        st.info(tr("state.starting"), icon="⏳")
    elif state == "finished" and view.result:
        st.success(finished_text(view.result), icon="✅")
    elif state == "failed":
        st.error(t_message(view.message or status.get("message"), language()), icon="💥")
    elif state in ("cancelled", "interrupted"):
        st.warning(tr(f"state_note.{state}"), icon="⏹️")
    return status
