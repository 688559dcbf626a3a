"""Streamlit glue shared by the pages: the job manager, the language, messages, who is the instructor."""
from __future__ import annotations

import functools
import gc
import importlib
import os
import re
import threading
import time
import uuid
from typing import Any, Callable
from urllib.parse import urlencode

import pandas as pd
import streamlit as st
import torch

from core.auth import PasswordGate
from core.classroom import SIZES
from core.controls import Control, read_query, to_query
from core.errors import UserError
from core.i18n import DEFAULT_LANGUAGE, LANGUAGES, duration, ordinal, t, t_message
from core.jobs import WARMED_UP, JobManager
from core.labs import RUNNERS, SIZERS, Lab
from core.ray_worker import manager_for_ray, ray_settings_from_env
from core.run_view import ReplayView, RunView
from core.runs import RunStore
from core.vision.backbone import download_weights

PASSWORD_VARIABLE = "PLAYGROUND_INSTRUCTOR_PASSWORD"
# How often a live panel redraws while its run goes on. Each redraw rebuilds the page's charts in the server
# process: with a class watching runs, twice a second would double the server's work for no visible gain.
LIVE_REFRESH_SECONDS = 1.0


# The server process only draws layer tables; training happens in the worker process,
# whose two CPU threads should not have to compete with a second pool here.
torch.set_num_threads(1)


def process_wide(build: Callable[[], Any]) -> Callable[[], Any]:
    """``build()`` once per server process, shared by every session. Not st.cache_resource: any
    browser can send Streamlit's "clear cache" message, which would start a second job manager
    (marking live runs interrupted) and forget every wrong password. ``.clear()`` is for tests."""
    lock, built = threading.Lock(), []

    def get():
        with lock:
            if not built:
                built.append(build())
            return built[0]

    get.clear = built.clear
    return functools.wraps(build)(get)


@process_wide
def job_manager() -> JobManager:
    """One per server process, shared by every browser session (its worker warms up at once):
    runs train on the Ray cluster that PLAYGROUND_RAY_ADDRESS names, else in a local worker process.
    A PLAYGROUND_RAY_* variable that makes no sense raises ValueError saying what to set."""
    settings = ray_settings_from_env()
    if settings is not None:
        return manager_for_ray(RunStore(), RUNNERS, settings, sizers=SIZERS)
    return JobManager(RunStore(), RUNNERS, sizers=SIZERS)


@process_wide
def settle_imports() -> None:
    """Import what the labs' pages run on (torch, torchvision, plotly), then move every object alive
    to the collector's permanent generation: with some 400,000 objects from those libraries, each of
    Python's full collections would otherwise hold the GIL for 0.2-0.35 s, and every session waits."""
    for module in {path.split(":")[0] for path in RUNNERS.values()} | {"core.viz", "core.summary", "core.snippets"}:
        importlib.import_module(module)
    gc.freeze()


def instructor_password() -> str | None:
    """The deployment's instructor password: $PLAYGROUND_INSTRUCTOR_PASSWORD, or ``instructor_password``
    in .streamlit/secrets.toml; None when neither is set."""
    if os.environ.get(PASSWORD_VARIABLE):
        return os.environ[PASSWORD_VARIABLE]
    try:
        return st.secrets.get("instructor_password") or None
    except FileNotFoundError:  # no secrets file at all
        return None


@process_wide
def password_gate() -> PasswordGate:
    """One per server process, so that wrong guesses count across every session."""
    return PasswordGate(instructor_password())


def shared_server() -> bool:
    """A server with an instructor is a class's: each student lists only their own runs and the
    pinned ones. Without one it is one person's playground, and every run on it is theirs."""
    return password_gate().configured


def is_instructor() -> bool:
    return shared_server() and st.session_state.get("instructor", False)


def visible_runs(kind: str) -> list[dict]:
    """The stored runs of a lab this browser may list, newest first."""
    listing_session = session_id() if shared_server() and not is_instructor() else None
    return job_manager().visible_runs(kind, listing_session)


def language() -> str:
    lang = st.session_state.get("lang")
    return lang if lang in LANGUAGES else DEFAULT_LANGUAGE


def tr(key: str, **params) -> str:
    """``t`` in the reader's language."""
    return t(key, language(), **params)


STUDENT_COOKIE = "playground_student"
STUDENT_ID = re.compile(r"[0-9a-f]{32}")
REMEMBER_DAYS = 180


def session_id() -> str:
    """Who this browser is, for quotas, turns in the queue and 'your runs': an id kept in a cookie,
    so that a reload or a second tab is the same student (a new Streamlit session would otherwise
    be a new student, with fresh limits and no way to cancel the run it started)."""
    if "session_id" not in st.session_state:
        remembered = st.context.cookies.get(STUDENT_COOKIE)
        known = isinstance(remembered, str) and STUDENT_ID.fullmatch(remembered)  # else a forged or foreign value
        st.session_state.session_id = remembered if known else uuid.uuid4().hex
    return st.session_state.session_id


def remember_student() -> None:
    """Keep this browser's id in its cookie (Streamlit can read cookies, not set them). Drawn on every
    run of a session that did not arrive with it: the cookies Streamlit reads are those of the session's start."""
    if st.context.cookies.get(STUDENT_COOKIE) == session_id():
        return
    with st.sidebar:
        st.html(f"<script>document.cookie = '{STUDENT_COOKIE}={session_id()}; path=/; "
                f"max-age={REMEMBER_DAYS * 86400}; SameSite=Lax';</script>", unsafe_allow_javascript=True)


def show_user_error(error: UserError) -> None:
    st.error(tr(error.key, **{name: sizes_in_words(value) for name, value in error.params.items()}), icon="✋")


def sizes_in_words(value: Any) -> Any:
    """A message's list of size presets ("quick, demo") as the size buttons name them; anything else as it is."""
    names = str(value).split(", ")
    if not all(name in SIZES for name in names):
        return value
    return tr("list.separator").join(tr(f"preset.{name}") for name in names)


def lab_estimate(spec, estimate_seconds: Callable, readable_runs: Callable, kind: str) -> tuple[float | None, str]:
    """A lab's expected seconds for ``spec`` on this server's device (None while the worker still measures it),
    from ``estimate_seconds(spec, info, runs, device)`` over the runs this browser may list; and the device."""
    manager = job_manager()
    device = manager.info.get("device", "")
    return estimate_seconds(spec, manager.info, readable_runs(visible_runs(kind)), device), device


def weights_download_button(container, label: str, name: str, key: str) -> None:
    """A button that fetches a network's ImageNet weights (on a host with internet); offline, the error says where
    to put the file instead. The page runs again with the network available."""
    if not container.button(label, key=key):
        return
    try:
        with st.spinner(tr("style.downloading")):
            download_weights(name)
    except UserError as error:
        show_user_error(error)
    else:
        st.rerun()


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


def settings_from_link(prefix: str, controls: tuple[Control, ...], kind: str | tuple[str, ...]) -> dict | None:
    """None when the page's widgets still hold their values, or got back the ones saved when the
    student left the page (Streamlit forgets the state of widgets that were not drawn). On a
    first visit: the link's values (bad ones are listed under ``<prefix>_ignored`` and shown by
    ``page_header``), and the link's run when it is one of this lab's. A link that names its tab opens
    that tab even with a run in it (``lab_tabs`` would otherwise open the run's tab)."""
    if f"{prefix}_{controls[0].name}" in st.session_state:
        return None
    if f"{prefix}_saved" in st.session_state:
        st.session_state.update(st.session_state[f"{prefix}_saved"])
        return None
    values, ignored = read_query(controls, st.query_params)
    st.session_state[f"{prefix}_run_id"] = run_from_link(values.get("run", ""), kind, ignored)
    if "tab" in st.query_params:
        st.session_state[f"{prefix}_shown_run"] = st.session_state[f"{prefix}_run_id"]
    st.session_state[f"{prefix}_ignored"] = ignored
    replay_from_link(prefix, values)
    return values


def keep_widgets(keys: list[str]) -> None:
    """Keep the values of widgets this run may not draw (those in a tab that is not open): Streamlit
    forgets a widget's state once a run goes by without it, unless the script sets it itself."""
    for key in keys:
        if key in st.session_state:
            st.session_state[key] = st.session_state[key]


def page_header(title: str, intro: str, ignored_link_settings: list[str]) -> None:
    """A lab's title and what it is for, then one warning per link setting that was ignored."""
    st.title(title)
    st.write(intro)
    for name in ignored_link_settings:
        st.warning(tr("link.ignored", name=name), icon="🔗")


def run_from_link(run_id: str, kind: str | tuple[str, ...], ignored: list[str]) -> str | None:
    """The link's run id if it names a run of this lab (of ``kind``, or one of them; an unknown id is
    kept: the page then says it does not know that run); a run of another lab is named among the
    ignored settings."""
    if not run_id:
        return None
    status = job_manager().status(run_id)
    if status is not None and status.get("kind") not in ((kind,) if isinstance(kind, str) else kind):
        ignored.append("run")
        return None
    return run_id


def route_run_to_tab(prefix: str, tab_prefix: str, tab: str, belongs: Callable[[dict], bool]) -> None:
    """Runs arrive under ``<prefix>_run_id`` (from a link, Home or the instructor's page). One whose status
    ``belongs`` to the tab ``tab``, which keeps its run under ``<tab_prefix>_run_id``, moves there (with its
    replay), the tab opens, and the page's own run (kept under ``<prefix>_own_run``) comes back."""
    run_id = st.session_state.get(f"{prefix}_run_id")
    status = job_manager().status(run_id) if run_id else None
    if status is None or not belongs(status):
        st.session_state[f"{prefix}_own_run"] = run_id
        return
    st.session_state[f"{tab_prefix}_run_id"] = run_id
    replay = st.session_state.get(f"{prefix}_replay")
    if replay and replay[0] == run_id:
        st.session_state[f"{tab_prefix}_replay"], st.session_state[f"{prefix}_replay"] = replay, None
    own = st.session_state.get(f"{prefix}_own_run")
    st.session_state[f"{prefix}_run_id"] = st.session_state[f"{prefix}_shown_run"] = own
    st.session_state[f"{prefix}_tab"] = tab


def lab_tabs(prefix: str, labels: dict[str, str], run_tab: str):
    """The lab's tabs (``labels``: name → label), open on the one the session last chose (``<prefix>_tab``),
    or on ``run_tab`` when a run was just opened or started (``<prefix>_run_id`` changed). Returns the
    open tab's name and container: only that tab's code runs, so a page keeps the others' widgets itself."""
    if st.session_state.get(f"{prefix}_run_id") != st.session_state.get(f"{prefix}_shown_run"):
        st.session_state[f"{prefix}_shown_run"] = st.session_state.get(f"{prefix}_run_id")
        if st.session_state[f"{prefix}_shown_run"]:  # from a link or from Home, or just started: show it
            st.session_state[f"{prefix}_tab"] = run_tab
    st.session_state[f"{prefix}_tabs"] = labels[st.session_state[f"{prefix}_tab"]]  # whatever the language
    chosen = st.tabs(list(labels.values()), key=f"{prefix}_tabs", on_change=_remember_tab, args=(prefix, labels))
    return next((name, tab) for name, tab in zip(labels, chosen) if tab.open)


def _remember_tab(prefix: str, labels: dict[str, str]) -> None:
    chosen = st.session_state[f"{prefix}_tabs"]
    st.session_state[f"{prefix}_tab"] = next((name for name, label in labels.items() if label == chosen),
                                             next(iter(labels)))


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
    """The page's view of a run (kept per browser session under ``<prefix>_views``), brought up to
    date; a replay when the link asked to replay this run (``<prefix>_replay``: run id and speed)."""
    views = st.session_state.setdefault(f"{prefix}_views", {})
    replay_id, speed = st.session_state.get(f"{prefix}_replay") or (None, 0)
    key = _replay_key(run_id, speed) if run_id == replay_id else run_id
    if key not in views:
        views[key] = ReplayView(run_id, speed=speed) if run_id == replay_id else RunView(run_id)
    return views[key].refresh(job_manager())


def _replay_key(run_id: str, speed: float) -> str:
    """Where ``cached_run_view`` keeps a replay's view, beside the run's own."""
    return f"{run_id}@{speed:g}x"


def replay_from_link(prefix: str, values: dict) -> None:
    """Remember that the link asked to replay its run (``replay`` = speed; 0 or none: show it as it ended)."""
    if values.get("replay") and st.session_state.get(f"{prefix}_run_id"):
        st.session_state[f"{prefix}_replay"] = (st.session_state[f"{prefix}_run_id"], float(values["replay"]))


def replay_speed(prefix: str) -> float:
    """The replay speed to keep in the link: the shown run's, while it is the replayed one."""
    replay_id, speed = st.session_state.get(f"{prefix}_replay") or (None, 0.0)
    return speed if replay_id and replay_id == st.session_state.get(f"{prefix}_run_id") else 0.0


def open_run(lab: Lab, run_id: str, speed: float | None = None) -> None:
    """Go to a run's lab and show it there (replayed at ``speed`` when one is given), whether or
    not this browser has visited that lab before."""
    st.session_state[f"{lab.prefix}_run_id"] = run_id
    st.session_state[f"{lab.prefix}_replay"] = (run_id, speed) if speed else None
    if speed:  # a replay watched before starts again from its beginning
        st.session_state.get(f"{lab.prefix}_views", {}).pop(_replay_key(run_id, speed), None)
    st.switch_page(lab.page, query_params={"run": run_id, **({"replay": f"{speed:g}"} if speed else {})})


def share_link(url_path: str) -> None:
    """"Link to this setup" in the sidebar: the address that reproduces the page as it is now.
    Call it after ``mirror_to_link``, so that the link holds this run's settings."""
    address = st.context.url or f"/{url_path}"  # the browser's address, this page's path included
    query = urlencode(st.query_params.to_dict())
    with st.sidebar.expander(tr("share.title"), icon="🔗"):
        st.code(address + (f"?{query}" if query else ""), language=None, wrap_lines=True)
        st.caption(tr("share.help"))


def layer_table_view(table: pd.DataFrame) -> pd.DataFrame:
    """``core.summary.layer_table`` with its column titles in the reader's language."""
    return table.rename(columns={"layer": tr("table.layer"), "output shape": tr("table.shape"),
                                 "parameters": tr("table.params")})


TRAINING_FIGURE_KEYS = ("loss", "accuracy", "lr", "momentum", "loss_axis", "accuracy_axis", "lr_axis",
                        "momentum_axis", "iteration", "train", "valid")


def training_figure_labels() -> dict:
    """The titles of ``core.viz.training_figure`` in the reader's language."""
    return {key: tr(f"chart.{key}") for key in TRAINING_FIGURE_KEYS}


def train_and_cancel(prefix: str, kind: str, spec, train_label: str, estimate: float | None = None) -> bool:
    """Train (disabled while the spec is bad or this session's run goes on) and Cancel (only for
    this session's own run). ``estimate``: the seconds the page expects the run to take, for the
    queue's wait and the instructor's longest-run limit. Returns whether the shown run trains now
    (``RunView.live``), for live panels to redraw every second."""
    manager = job_manager()
    current = st.session_state.get(f"{prefix}_run_id")
    view = cached_run_view(prefix, current) if current else None  # maybe someone else's shared run
    mine = view is not None and view.active and current in manager.active_runs(session_id())
    # Submitted in the click's callback, before the page runs: the page then draws the new run at
    # once, in one run instead of two (with a class pressing Train together, that halves the wait).
    st.button(train_label, type="primary", disabled=spec is None or mine, width="stretch", key=f"{prefix}_train",
              on_click=submit, args=(f"{prefix}_run_id", kind, spec.to_dict() if spec else None, estimate))
    show_refusal(f"{prefix}_run_id")
    if st.button(tr("mnist.cancel"), disabled=not mine, width="stretch", key=f"{prefix}_cancel"):
        manager.cancel(current, session_id())
        st.toast(tr("mnist.cancel_sent"))
    return view is not None and view.live


def submit(run_key: str, kind: str, spec: dict, estimate: float | None = None) -> bool:
    """Queue a run for this browser (its id goes under ``run_key``); False when the server refused
    it, whose reason ``show_refusal(run_key)`` then shows. Usable as a button's callback."""
    try:
        st.session_state[run_key] = job_manager().submit(
            kind, spec, session_id(), estimate=estimate, privileged=is_instructor())
    except UserError as error:
        st.session_state[f"{run_key}_refused"] = error
        return False
    return True


def show_refusal(run_key: str) -> None:
    """Why the server refused the last run sent for ``run_key``, once."""
    if (error := st.session_state.pop(f"{run_key}_refused", None)) is not None:
        show_user_error(error)


def epoch_progress(latest: dict) -> str:
    """Progress of a run counted in epochs, with its ETA."""
    return tr("mnist.progress", step=latest["step"], total=latest["total_steps"], epoch=latest["epoch"], eta=latest["eta"])


def show_run_state(view: RunView, progress_text: Callable[[dict], str],
                   finished_text: Callable[[dict], str], run_key: str | None = None, *,
                   polling: bool) -> dict | None:
    """One line on where a run is: its place in the queue and the wait, progress with an ETA, its
    result, why it failed, or that it stopped (with Run again for an interrupted run, whose new id
    then goes under ``run_key``). Returns the run's status; None when a panel has nothing of the run to draw:
    no run has that id (it says so), or the run still waits in the queue. A queued run's panel is drawn once,
    and only its place in the queue polls (``queue_line``): with a class pressing Train together most runs
    wait, and redrawing their panels every second was most of a busy server's work. ``polling``: whether the
    panel redraws every second (the page decided from ``RunView.live`` a moment before)."""
    if view.live and not polling:
        st.rerun()  # it started since the page looked: a page run that decides again, so that its panel polls
    status = job_manager().status(view.run_id)
    if status is None:
        st.warning(tr("mnist.unknown_run", run=view.run_id))
        return None
    state, latest, message = view.state or status["state"], view.latest, view.message or status.get("message")
    if isinstance(view, ReplayView):
        st.caption(tr("replay.caption", speed=view.speed, when=when(status.get("created"))), help=tr("replay.help"))
    if state == "queued":
        if isinstance(view, ReplayView):
            show_place_in_queue(status)  # as it was recorded; the replay's own polling moves it on
        else:
            queue_line(view.run_id)
        return None
    elif state == "running" and latest:
        st.progress(min(1.0, latest["step"] / latest["total_steps"]), text=progress_text(latest))
    elif state == "running":
        st.info(tr("state.starting"), icon="⏳")
    elif state == "finished" and view.result:
        st.success(finished_text(view.result), icon="✅")
    elif state == "failed":
        st.error(t_message(message, language()), icon="💥")
    elif state == "cancelled" and message:
        st.warning(t_message(message, language()), icon="⏹️")  # by a limit or the instructor
    elif state in ("cancelled", "interrupted"):
        st.warning(tr(f"state_note.{state}"), icon="⏹️")
        if state == "interrupted" and run_key and st.button(tr("run.again"), key=f"{run_key}_again_{view.run_id}"):
            submit(run_key, status["kind"], status["spec"], status.get("estimate"))
            st.rerun()  # the whole page (this may be a fragment): its Train, Cancel and live panel follow the new run
    return status


@st.fragment(run_every=LIVE_REFRESH_SECONDS)
def queue_line(run_id: str) -> None:
    """A queued run's place and wait, redrawn every second on its own; once the run leaves the queue
    (it starts, or is cancelled), the whole page reruns, so that its live panel follows the run."""
    status = job_manager().status(run_id)
    if status is None or status["state"] != "queued":
        st.rerun()
    show_place_in_queue(status)


def show_place_in_queue(status: dict) -> None:
    st.info(tr("state.queued_at", place=ordinal(status.get("queue_position") or 1, language()),
               wait=duration(status.get("wait_seconds") or 0, language())), icon="⏳")


def when(timestamp: float | None) -> str:
    """A run's time as the run tables show it (UTC, to the minute)."""
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(timestamp or 0))


def scrubbed_picture(view: RunView, key: str, label: str, step_label: Callable[[int], str],
                     help: str) -> tuple[bytes, int] | None:
    """The latest picture a run sent while it goes on; afterwards, the one a scrubber (``label``, each position
    named by ``step_label(step)``) picks among those saved. Returns (png, step), or None before the first."""
    if not view.samples:
        return None
    if view.active or len(view.samples) == 1:
        return view.samples[-1][1], view.samples[-1][0]
    steps = [step for step, _ in view.samples]
    chosen = st.select_slider(label, options=list(range(len(steps))), value=len(steps) - 1,
                              format_func=lambda i: step_label(steps[i]), key=key, help=help)
    return view.samples[chosen][1], steps[chosen]
