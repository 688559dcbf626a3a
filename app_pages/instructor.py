"""Instructor mode: the whole queue, cancelling any run, the class's limits, pins on Home and replays."""
import time

import pandas as pd
import streamlit as st

from core.classroom import SIZES, Limits
from core.errors import UserError
from core.labs import lab_of_kind
from ui.common import (PASSWORD_VARIABLE, is_instructor, job_manager, open_run, password_gate, session_id,
                       share_link, show_user_error, tr, when)

manager = job_manager()
REPLAY_SPEEDS = (1.0, 2.0, 5.0, 10.0, 20.0)


def unlock_form() -> None:
    with st.form("teach_unlock"):
        password = st.text_input(tr("teach.password"), type="password", key="teach_password")
        if not st.form_submit_button(tr("teach.unlock"), type="primary", key="teach_unlock_button"):
            return
    try:
        right = password_gate().check(password, [session_id()])
    except UserError as error:
        show_user_error(error)
        return
    if right:
        st.session_state.instructor = True
        st.rerun()
    st.error(tr("teach.wrong"), icon="🔒")


def who(session: str) -> str:
    return tr("teach.you") if session == session_id() else tr("teach.student", id=session[:6])


def minutes_seconds(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = max(0, int(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


def describe(run: dict) -> str:
    """The lab, and the size the run's work amounts to: a "quick" run given the lecture's epochs is a
    lecture-size run, as the size limit counts it."""
    lab = lab_of_kind(run["kind"])
    name = tr(f"lab.{lab.key}.title") if lab else run["kind"]
    spec = run.get("spec") or {}
    try:
        size = manager.size_of(run["kind"], spec)
    except (KeyError, TypeError, ValueError):  # a run stored by an earlier version, with other settings
        size = spec.get("preset")
    return f"{name} · {tr('preset.' + size)}" if size in SIZES else name


@st.fragment(run_every=2.0)
def queue_panel() -> None:
    now = time.time()
    runs = manager.queue()
    if not runs:
        st.caption(tr("teach.queue_empty"))
        return
    st.dataframe(pd.DataFrame([{
        tr("runs.id"): run["id"], tr("teach.who"): who(run["session"]), tr("teach.what"): describe(run),
        tr("runs.state"): tr(f"state.{run['state']}"), tr("teach.place"): run["queue_position"] or "",
        tr("teach.waited"): minutes_seconds((run["started"] or now) - run["created"]),
        tr("teach.running_for"): minutes_seconds(now - run["started"]) if run["started"] else "",
        tr("teach.expected"): minutes_seconds(run["estimate"]),
    } for run in runs]), hide_index=True, width="stretch")
    chosen = st.multiselect(tr("teach.cancel_which"), [run["id"] for run in runs], key="teach_cancel_ids",
                            format_func=lambda rid: next(f"{rid} · {who(r['session'])} · {describe(r)}"
                                                         for r in runs if r["id"] == rid))
    if st.button(tr("teach.cancel"), disabled=not chosen):
        cancelled = sum(manager.cancel(run_id, session_id(), privileged=True) for run_id in chosen)
        st.toast(tr("teach.cancelled", count=cancelled))


def limits_form() -> None:
    limits = manager.limits
    with st.form("teach_limits"):
        first, second, third, fourth = st.columns(4)
        running = first.number_input(tr("teach.running_per_session"), 1, value=limits.running_per_session, key="teach_running")
        queued = second.number_input(tr("teach.queued_per_session"), 1, value=limits.queued_per_session, key="teach_queued")
        total = third.number_input(tr("teach.queued_total"), 1, value=limits.queued_total, key="teach_total")
        minutes = fourth.number_input(tr("teach.max_run_minutes"), 0.0, value=float(limits.max_run_minutes),
                                      step=1.0, format="%g", help=tr("teach.max_run_minutes_help"),
                                      key="teach_minutes")  # "0" (no limit) and "2.5", not "0.00"
        sizes = st.multiselect(tr("teach.sizes"), SIZES, default=list(limits.sizes),
                               format_func=lambda size: tr(f"preset.{size}"), help=tr("teach.sizes_help"),
                               key="teach_sizes")
        if not st.form_submit_button(tr("teach.save_limits"), key="teach_save"):
            return
    try:
        manager.set_limits(Limits(int(running), int(queued), int(total), float(minutes), tuple(sizes)))
    except UserError as error:
        show_user_error(error)
        return
    st.success(tr("teach.limits_saved"), icon="✅")


def runs_panel() -> None:
    runs = [run for run in manager.store.list_runs(limit=100)
            if lab_of_kind(run["kind"]) and run["state"] not in ("queued", "running")]
    if not runs:
        st.caption(tr("runs.none"))
        return
    st.dataframe(pd.DataFrame([{
        tr("runs.id"): run["id"], tr("teach.who"): who(run["session"]), tr("teach.what"): describe(run),
        tr("runs.when"): when(run["created"]),
        tr("runs.state"): tr(f"state.{run['state']}"),
        tr("runs.accuracy"): f"{run['result']['accuracy']:.2%}" if (run["result"] or {}).get("accuracy") else "",
    } for run in runs]), hide_index=True, width="stretch", height=(min(len(runs), 6) + 1) * 35 + 3)
    labels = {run["id"]: f"{run['id']} · {describe(run)} · {tr('state.' + run['state'])}" for run in runs}
    run_id = st.selectbox(tr("teach.pick_run"), list(labels), format_func=labels.get, key="teach_run")
    speed = st.select_slider(tr("teach.speed"), REPLAY_SPEEDS, value=2.0, format_func=lambda s: f"{s:g}×",
                             key="teach_speed", help=tr("teach.speed_help"))
    lab = lab_of_kind(next(run["kind"] for run in runs if run["id"] == run_id))
    replay, pin, pin_replay = st.columns(3)
    if replay.button(tr("teach.replay"), icon="▶️", width="stretch"):
        open_run(lab, run_id, speed)
    if pin.button(tr("teach.pin"), icon="📌", width="stretch"):
        manager.store.pin(run_id)
        st.toast(tr("teach.pinned"))
    if pin_replay.button(tr("teach.pin_replay", speed=speed), icon="📌", width="stretch"):
        manager.store.pin(run_id, speed)
        st.toast(tr("teach.pinned"))


def pins_panel() -> None:
    pins = manager.store.pins()
    if not pins:
        st.caption(tr("teach.no_pins"))
    for run_id, speed in pins.items():
        text, button = st.columns([4, 1])
        run = manager.status(run_id)
        what = describe(run) if run else run_id
        text.write(f"📌 {run_id} · {what}" + (f" · {tr('home.replay', speed=speed)}" if speed else ""))
        if button.button(tr("teach.unpin"), key=f"teach_unpin_{run_id}"):
            manager.store.unpin(run_id)
            st.rerun()


st.title(tr("teach.title"))
st.write(tr("teach.intro"))
share_link("instructor")
if not password_gate().configured:
    st.info(tr("teach.off", variable=PASSWORD_VARIABLE), icon="🔒")
    st.stop()
if not is_instructor():
    unlock_form()
    st.stop()

if st.button(tr("teach.lock"), icon="🔒"):
    st.session_state.instructor = False
    st.rerun()
st.subheader(tr("teach.queue"))
st.caption(tr("teach.queue_caption"))
queue_panel()
st.subheader(tr("teach.limits"))
limits_form()
st.subheader(tr("teach.runs"))
st.caption(tr("teach.runs_caption"))
runs_panel()
st.subheader(tr("teach.pins"))
pins_panel()
