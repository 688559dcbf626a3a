"""A classroom on loopback: N concurrent sessions open labs and press Train, driven through
Streamlit's own websocket protocol.

Goal (issue "Classroom deployment"): with 30 concurrent sessions, p95 page response under 1 s,
and under 50 MB of server memory per idle session, on the 2-core box.
Measured on the quiet 2-core box (numbers and how to read them: bench/README.md): memory met,
about 0.1 MB per idle session. p95 of full page runs 0.10 s when the 30 sessions arrive within
10 s (--ramp 10), 0.23 s within 3 s, 0.59 s within 1 s, and 0.86-1.04 s when all 30 open a lab and
press Train at the same instant (under 1 s in 5 of 8 runs: one Python process serves every
session on one core's worth of GIL, and their page runs arrive together, so the p95 is nearly
all of their work).

No browsers: 30 Chromiums on 2 cores would measure Chromium. Each session is a websocket to
``/_stcore/stream`` (subprotocol "streamlit") that speaks what the browser speaks: a BackMsg
``rerun_script`` (a ClientState: query string, page, widget states, fragment id) goes out, and
ForwardMsgs come back (new_session, navigation, deltas, ..., ``script_finished``). A page
response is timed from sending ``rerun_script`` to the ``script_finished`` that ends the run
(a "finished early for rerun" one, sent when the page calls ``st.rerun()``, does not end it).
Pages are chosen like the browser does: by url path for the first load (``page_name``), then by
the ``page_script_hash`` the navigation message lists. A click on Train is a rerun whose widget
states hold the button's id (read from the delta that drew it) with ``trigger_value``. The live
panel's poll is a rerun of the fragment named by the server's ``auto_rerun`` message, sent
every ``interval`` seconds, but never before the previous one has finished.

Phases, all against one server started here (temp database, its own port):
1. Warm-up: open Home and wait until the worker has measured the machine (no "Measuring").
2. Reference: one session opens Home and each lab, 3 times, one request at a time. The first
   visit to each page is cold (imports); the later ones are the single-user page time. Then
   the same session presses Train on MNIST, polls its live panel for --ref-poll-seconds,
   loads pages while the run trains (one user, but the worker busy), and cancels.
3. Memory: with that session idle on a lab page, the server's RSS (the streamlit process only,
   not its ``core.worker`` child) is read; then N-1 more sessions each open Home and a lab,
   one after another, and stay idle. (RSS_N - RSS_1)/(N-1) is the memory per idle session
   (N is --memory-sessions, default --sessions). Those sessions are then closed.
4. Load: N fresh sessions at once (or starting at random within --ramp seconds): Home, a lab (mnist, schedules, darknet in turn), Train with
   the page's defaults, then the live panel's polls (or, on a page with no live panel, a full
   rerun every 2 s) for --poll-seconds, then Cancel on their own run. The server queues
   at most 20 runs and trains one at a time, so some presses are refused: that page is a
   valid response and is counted as refused.
Before phases 2 and 4 the script waits (up to --quiet-wait s) for other processes to leave the
CPU, and it prints the share they took during each phase: on 2 cores, a test run beside it
doubles the page times. Widget states sent are only the button triggers (the server keeps the
other widgets' values); the browser would send them all, which costs the server a little more.

    PYTHONPATH=. .venv/bin/python bench/load_test.py [--sessions 30] [--poll-seconds 20] [--ramp 0]
        [--memory-sessions N] [--option runner.postScriptGC=false] [--quiet-wait 60]
"""
from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import websockets
from streamlit.proto.Alert_pb2 import Alert
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

REPO_ROOT = Path(__file__).resolve().parent.parent
LABS = ("mnist", "schedules", "darknet")  # the url paths of the built labs (core.labs.LABS)
GOAL_P95_SECONDS = 1.0
GOAL_MB_PER_IDLE_SESSION = 50.0
MEASURING = "Measuring this machine"  # device.measuring in core/locales/en.json
FINISHED_EARLY_FOR_RERUN = ForwardMsg.ScriptFinishedStatus.Value("FINISHED_EARLY_FOR_RERUN")
FINISHED_FRAGMENT = ForwardMsg.ScriptFinishedStatus.Value("FINISHED_FRAGMENT_RUN_SUCCESSFULLY")
ERROR = Alert.Format.Value("ERROR")
REFUSAL_ICON = "✋"  # ui.common.show_user_error
TICK = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
CPUS = os.cpu_count() or 1


class RequestTimeout(Exception):
    """No final script_finished arrived in time; the session's stream is then unusable."""


# ----- the server -------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """``streamlit run Home.py`` in its own process group, on a temp database."""

    def __init__(self, log_path: Path, db_path: Path, options: list[str] = ()):
        self.port = free_port()
        flags = []
        for option in options:  # "runner.postScriptGC=false" -> --runner.postScriptGC false
            name, _, value = option.partition("=")
            flags += [f"--{name.removeprefix('--')}", value]
        env = {**os.environ, "PLAYGROUND_DB": str(db_path)}
        env.pop("PLAYGROUND_INSTRUCTOR_PASSWORD", None)
        self.log = open(log_path, "w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "Home.py", "--server.port", str(self.port),
             "--server.headless", "true", "--server.address", "127.0.0.1", *flags],
            cwd=REPO_ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        self.pid = self.process.pid

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/_stcore/stream"

    def wait_healthy(self, timeout: float) -> float:
        start = time.perf_counter()
        while time.perf_counter() - start < timeout:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited with code {self.process.returncode}; see {self.log.name}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/_stcore/health", timeout=2) as reply:
                    if reply.read().strip() == b"ok":
                        return time.perf_counter() - start
            except OSError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"/_stcore/health did not answer 'ok' within {timeout:.0f} s")

    def rss_mb(self) -> float:
        return rss_mb(self.pid)

    def children(self) -> list[int]:
        return child_pids(self.pid)

    def stop(self) -> None:
        """SIGTERM to the whole group (server and worker), then SIGKILL after 10 s."""
        if self.process.poll() is None:
            try:
                os.killpg(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                pass
        try:  # the worker too, even when the server already exited
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if self.process.poll() is None:
            self.process.wait(5)
        self.log.close()


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return math.nan


def child_pids(pid: int) -> list[int]:
    children = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return children
    for task in tasks:
        try:
            children += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return children


def process_ticks(pid: int) -> int:
    """utime + stime of a process, in clock ticks (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, IndexError):
        return 0


def cpu_ticks() -> tuple[int, int]:
    """(busy, stolen) ticks of the whole machine: user + nice + system + irq + softirq (guest
    time is already inside user), and the time the hypervisor gave to other machines."""
    with open("/proc/stat") as stat:
        values = [int(v) for v in stat.readline().split()[1:]] + [0] * 10
    user, nice, system, _idle, _iowait, irq, softirq, steal = values[:8]
    return user + nice + system + irq + softirq, steal


class CpuShares:
    """Who used the CPU between start() and stop(): the server, its worker, this load generator,
    and everything else on the machine (e.g. someone's tests), as shares of all cores."""

    def __init__(self, server: Server):
        self.server = server

    def _sample(self) -> dict:
        pids = {"server": [self.server.pid], "worker": self.server.children(), "client": [os.getpid()]}
        busy, stolen = cpu_ticks()
        return {"time": time.perf_counter(), "busy": busy, "stolen": stolen,
                **{name: sum(process_ticks(pid) for pid in group) for name, group in pids.items()}}

    def start(self) -> None:
        self.begin = self._sample()

    def stop(self) -> dict:
        end = self._sample()
        capacity = (end["time"] - self.begin["time"]) * TICK * CPUS
        shares = {name: (end[name] - self.begin[name]) / capacity for name in ("server", "worker", "client")}
        shares["others"] = max(0.0, (end["busy"] - self.begin["busy"]) / capacity - sum(shares.values()))
        shares["stolen"] = (end["stolen"] - self.begin["stolen"]) / capacity
        return shares


async def wait_for_quiet(server: Server, limit: float, share: float = 0.05) -> float:
    """Wait (at most ``limit`` seconds) for a second in which other processes use under
    ``share`` of the CPU; return the last second's share. The benchmark's own processes are idle
    then, so whatever is busy is someone else (on 2 cores a test run doubles page times)."""
    deadline = time.perf_counter() + limit
    while True:
        cpu = CpuShares(server)
        cpu.start()
        await asyncio.sleep(1.0)
        others = cpu.stop()["others"]
        if others < share or time.perf_counter() > deadline:
            return others


# ----- one session: the browser's side of the protocol ---------------------------------------------
@dataclass
class RunReply:
    """What one rerun_script request got back."""
    seconds: float
    status: int
    messages: int = 0
    bytes: int = 0
    buttons: list = field(default_factory=list)  # (id, label, disabled)
    alerts: list = field(default_factory=list)  # (format, icon, body)
    exceptions: list = field(default_factory=list)
    auto_reruns: dict = field(default_factory=dict)  # fragment id -> interval
    texts: list = field(default_factory=list)


class Session:
    def __init__(self, server: Server, name: str, timeout: float):
        self.server, self.name, self.timeout = server, name, timeout
        self.ws = None
        self.pages: dict[str, str] = {}  # url path ("" for Home) -> page_script_hash
        self.page_hash = ""
        self.query_string = ""
        self.fragments: dict[str, float] = {}  # the live fragments of the page on screen
        self.last: RunReply | None = None

    async def connect(self) -> None:
        self.ws = await asyncio.wait_for(websockets.connect(
            self.server.url, subprotocols=["streamlit"], max_size=None, ping_interval=None,
            open_timeout=self.timeout), self.timeout)

    async def close(self) -> None:
        if self.ws is not None:
            try:
                await asyncio.wait_for(self.ws.close(), 5)
            except Exception:  # noqa: BLE001 - a closing socket may fail in many ways; it is gone either way
                pass
            self.ws = None

    async def open_page(self, path: str) -> RunReply:
        """Open a page as a click in the navigation does (or, before any navigation message,
        as typing its url does)."""
        self.query_string = ""
        if path in self.pages:
            return await self.rerun(page_script_hash=self.pages[path])
        return await self.rerun(page_name=path)

    async def rerun(self, page_script_hash: str | None = None, page_name: str = "", widgets=(),
                    fragment_id: str = "") -> RunReply:
        msg = BackMsg()
        state = msg.rerun_script
        state.query_string = self.query_string
        state.page_script_hash = self.page_hash if page_script_hash is None else page_script_hash
        state.page_name = page_name
        for widget_id in widgets:  # button clicks
            widget = state.widget_states.widgets.add()
            widget.id = widget_id
            widget.trigger_value = True
        if fragment_id:
            state.fragment_id = fragment_id
            state.is_auto_rerun = True
        start = time.perf_counter()
        await self.ws.send(msg.SerializeToString())
        reply = RunReply(seconds=math.nan, status=-1)
        fragments: dict[str, float] = {}
        deadline = start + self.timeout
        while True:
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                raise RequestTimeout(f"{self.name}: no script_finished within {self.timeout:.0f} s")
            try:
                data = await asyncio.wait_for(self.ws.recv(), remaining)
            except asyncio.TimeoutError:
                raise RequestTimeout(f"{self.name}: no script_finished within {self.timeout:.0f} s") from None
            reply.messages += 1
            reply.bytes += len(data)
            fwd = ForwardMsg()
            fwd.ParseFromString(data)
            kind = fwd.WhichOneof("type")
            if kind == "delta":
                self._read_delta(fwd.delta, reply)
            elif kind == "navigation":
                self.pages = {page.url_pathname: page.page_script_hash for page in fwd.navigation.app_pages}
                self.page_hash = fwd.navigation.page_script_hash
            elif kind == "page_info_changed":
                self.query_string = fwd.page_info_changed.query_string
            elif kind == "auto_rerun":
                fragments[fwd.auto_rerun.fragment_id] = fwd.auto_rerun.interval
            elif kind == "script_finished" and fwd.script_finished != FINISHED_EARLY_FOR_RERUN:
                reply.seconds = time.perf_counter() - start
                reply.status = fwd.script_finished
                break
        reply.auto_reruns = fragments
        if reply.status != FINISHED_FRAGMENT:  # a full run: it says which fragments poll now
            self.fragments = fragments
        self.last = reply
        return reply

    @staticmethod
    def _read_delta(delta, reply: RunReply) -> None:
        if delta.WhichOneof("type") != "new_element":
            return
        element = delta.new_element
        kind = element.WhichOneof("type")
        if kind == "button":
            reply.buttons.append((element.button.id, element.button.label, element.button.disabled))
        elif kind == "alert":
            reply.alerts.append((element.alert.format, element.alert.icon, element.alert.body))
            reply.texts.append(element.alert.body)
        elif kind == "exception":
            reply.exceptions.append(f"{element.exception.type}: {element.exception.message}")
        elif kind == "markdown":
            reply.texts.append(element.markdown.body)


def find_button(reply: RunReply, key_suffix: str) -> tuple[str, str, bool] | None:
    """The button whose widget key ends with ``key_suffix`` (ids look like ``$$ID-<hash>-mnist_train``)."""
    return next((b for b in reply.buttons if b[0].endswith(key_suffix)), None)


def train_button(reply: RunReply) -> tuple[str, str, bool] | None:
    return find_button(reply, "_train") or next((b for b in reply.buttons if "Train" in b[1]), None)


# ----- the numbers ------------------------------------------------------------------------------------
class Latencies:
    def __init__(self):
        self.by_kind: dict[str, list[float]] = defaultdict(list)

    def add(self, kind: str, seconds: float) -> None:
        self.by_kind[kind].append(seconds)

    def all(self, kinds=None) -> list[float]:
        return [s for k, values in self.by_kind.items() if kinds is None or k in kinds for s in values]


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (p95 of 20 values is the 19th smallest)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def describe(values: list[float]) -> str:
    if not values:
        return "n=0"
    return (f"n={len(values):4d}  p50 {percentile(values, 50):6.3f}  p95 {percentile(values, 95):6.3f}  "
            f"max {max(values):6.3f}")


# ----- the phases ---------------------------------------------------------------------------------------
async def warm_up(server: Server, timeout: float, request_timeout: float) -> float:
    """Open Home until it no longer says the worker is measuring the machine."""
    start = time.perf_counter()
    session = Session(server, "warm-up", request_timeout)
    await session.connect()
    try:
        first = await session.open_page("")
        print(f"  first Home load (cold server, imports): {first.seconds:.2f} s")
        while True:
            reply = await session.open_page("")
            measuring = any(MEASURING in text for text in reply.texts)
            if not measuring and not reply.auto_reruns:
                return time.perf_counter() - start
            if time.perf_counter() - start > timeout:
                raise TimeoutError(f"the worker still measured the machine after {timeout:.0f} s")
            await asyncio.sleep(2.0)
    finally:
        await session.close()


async def reference(server: Server, repeats: int, request_timeout: float) -> tuple[Session, dict]:
    """One session, one request at a time: Home, then each lab, ``repeats`` times."""
    session = Session(server, "reference", request_timeout)
    await session.connect()
    times: dict[str, list[float]] = defaultdict(list)
    cpu: dict[str, list[float]] = defaultdict(list)  # the server's CPU seconds per request
    for round_ in range(repeats):
        for lab in LABS:
            for kind, path in (("home", ""), (lab, lab)):
                before = process_ticks(server.pid)
                reply = await session.open_page(path)
                await asyncio.sleep(0.05)  # the run's last work (cleanup) counts too
                times[kind].append(reply.seconds)
                if round_ or kind == "home":
                    cpu[kind].append((process_ticks(server.pid) - before) / TICK)
                if reply.exceptions:
                    print(f"  ! {kind} raised: {reply.exceptions[0]}")
    return session, times, cpu


async def reference_training(session: Session, poll_seconds: float) -> dict:
    """The same single session while its own MNIST run trains: the Train press on an idle
    server, the live panel's polls, and page loads while the worker takes the CPU. Then Cancel."""
    times: dict[str, list[float]] = defaultdict(list)
    page = await session.open_page("mnist")
    button = train_button(page)
    if button is None or button[2]:
        print("  ! no enabled Train button on mnist")
        return times
    times["train"].append((await session.rerun(widgets=[button[0]])).seconds)
    stop_at = time.perf_counter() + poll_seconds
    while session.fragments and time.perf_counter() < stop_at:
        fragment_id, interval = next(iter(session.fragments.items()))
        sent = time.perf_counter()
        times["poll"].append((await session.rerun(fragment_id=fragment_id)).seconds)
        await asyncio.sleep(max(0.0, sent + interval - time.perf_counter()))
    for _ in range(2):
        times["home"].append((await session.open_page("")).seconds)
        reply = await session.open_page("mnist")
        times["mnist"].append(reply.seconds)
    times["still training"] = [bool(session.fragments)]
    cancel = find_button(reply, "_cancel")
    if cancel is not None and not cancel[2]:
        times["cancel"].append((await session.rerun(widgets=[cancel[0]])).seconds)
    return times


async def memory(server: Server, count: int, request_timeout: float) -> tuple[list[Session], list[float], list[float]]:
    """Open ``count`` sessions one after another, each Home then a lab, left idle; the server's
    RSS after each one."""
    sessions, rss, times = [], [], []
    for i in range(count):
        session = Session(server, f"idle-{i}", request_timeout)
        await session.connect()
        sessions.append(session)
        times.append((await session.open_page("")).seconds)
        times.append((await session.open_page(LABS[i % len(LABS)])).seconds)
        await asyncio.sleep(0.2)
        rss.append(server.rss_mb())
    return sessions, rss, times


@dataclass
class Outcome:
    accepted: int = 0
    refused: int = 0
    unclear: int = 0
    refusals: dict = field(default_factory=lambda: defaultdict(int))
    exceptions: list = field(default_factory=list)
    failures: list = field(default_factory=list)
    cancelled: int = 0


async def student(server: Server, index: int, args, start_at: float, latencies: Latencies,
                  outcome: Outcome, sessions: list[Session]) -> None:
    lab = LABS[index % len(LABS)]
    session = Session(server, f"student-{index}", args.timeout)
    sessions.append(session)

    def note(kind: str, reply: RunReply) -> RunReply:
        latencies.add(kind, reply.seconds)
        latencies.add(f"{kind}:{lab}", reply.seconds)
        outcome.exceptions += [f"{session.name} {kind}: {e}" for e in reply.exceptions]
        return reply

    try:
        await asyncio.sleep(max(0.0, start_at - time.perf_counter()))
        await session.connect()
        note("home", await session.open_page(""))
        page = note("lab", await session.open_page(lab))
        button = train_button(page)
        if button is None or button[2]:
            outcome.failures.append(f"{session.name}: no enabled Train button on {lab}")
            return
        reply = note("train", await session.rerun(widgets=[button[0]]))
        refusal = next((a for a in reply.alerts if a[0] == ERROR and a[1] == REFUSAL_ICON), None)
        if refusal is not None:
            outcome.refused += 1
            outcome.refusals[refusal[2]] += 1
        elif session.fragments or "run=" in session.query_string:
            outcome.accepted += 1
        else:
            outcome.unclear += 1
        # The live panel's polls (what the browser does on the server's auto_rerun), or, with no
        # live panel on screen, a full rerun every 2 s, until --poll-seconds have passed.
        stop_at = time.perf_counter() + args.poll_seconds
        while time.perf_counter() < stop_at:
            if session.fragments:
                fragment_id, interval = next(iter(session.fragments.items()))
                sent = time.perf_counter()
                note("poll", await session.rerun(fragment_id=fragment_id))
            else:
                interval, sent = args.rerun_interval, time.perf_counter()
                note("rerun", await session.rerun())
            await asyncio.sleep(max(0.0, sent + interval - time.perf_counter()))
        # Cancel this session's run if it still goes on, so that the worker is free at the end.
        if session.last is not None and session.fragments:
            full = note("rerun", await session.rerun())
            cancel = find_button(full, "_cancel")
            if cancel is not None and not cancel[2]:
                note("cancel", await session.rerun(widgets=[cancel[0]]))
                outcome.cancelled += 1
    except RequestTimeout as error:
        outcome.failures.append(str(error))
        await session.close()
    except (OSError, websockets.exceptions.WebSocketException, asyncio.TimeoutError) as error:
        outcome.failures.append(f"{session.name}: {type(error).__name__}: {error}")
        await session.close()


async def load(server: Server, args) -> tuple[Latencies, Outcome, list[Session], dict, float]:
    latencies, outcome, sessions = Latencies(), Outcome(), []
    cpu = CpuShares(server)
    client_cpu = resource.getrusage(resource.RUSAGE_SELF)
    cpu.start()
    start = time.perf_counter() + 0.5
    tasks = [student(server, i, args, start + random.uniform(0, args.ramp), latencies, outcome, sessions)
             for i in range(args.sessions)]
    await asyncio.gather(*tasks)
    wall = time.perf_counter() - start
    shares = cpu.stop()
    after = resource.getrusage(resource.RUSAGE_SELF)
    shares["client_seconds"] = (after.ru_utime + after.ru_stime) - (client_cpu.ru_utime + client_cpu.ru_stime)
    return latencies, outcome, sessions, shares, wall


async def settled_rss(server: Server) -> float:
    """The median of three reads of the server's RSS, 0.5 s apart."""
    reads = []
    for _ in range(3):
        await asyncio.sleep(0.5)
        reads.append(server.rss_mb())
    return statistics.median(reads)


async def quiet(server: Server, args) -> None:
    others = await wait_for_quiet(server, args.quiet_wait)
    print(f"  other processes used {others:.0%} of the CPU just before"
          f"{'' if others < 0.05 else f' (still busy after waiting {args.quiet_wait:g} s)'}")


def print_table(title: str, latencies: Latencies, kinds: list[str]) -> None:
    print(title)
    for kind in kinds:
        values = latencies.by_kind.get(kind, [])
        if values:
            print(f"  {kind:<20} {describe(values)}")


async def main_async(args, server: Server) -> int:
    print(f"Server pid {server.pid} on port {server.port}; log {server.log.name}; "
          f"options: {' '.join(args.option) or 'none (the repository config)'}")
    print(f"  health after {server.wait_healthy(60):.1f} s")

    print("\n1. Warm-up: Home, then wait while the worker measures the machine")
    waited = await warm_up(server, args.warmup_timeout, args.timeout)
    print(f"  worker ready after {waited:.1f} s; server RSS {server.rss_mb():.0f} MB, "
          f"worker RSS {sum(rss_mb(p) for p in server.children()):.0f} MB")

    print(f"\n2. Reference: one session, one request at a time, {args.ref_repeats} rounds")
    await quiet(server, args)
    phase = CpuShares(server)
    phase.start()
    ref_session, ref, ref_cpu = await reference(server, args.ref_repeats, args.timeout)
    single: dict[str, float] = {}
    for kind, values in ref.items():
        warm = values[1:] if kind != "home" else values
        single[kind] = statistics.median(warm)
        cold = f"   first visit (cold) {values[0]:.3f}" if kind != "home" else ""
        cpu = statistics.mean(ref_cpu[kind]) if ref_cpu.get(kind) else math.nan
        print(f"  {kind:<10} median {single[kind]:.3f} s, server CPU {cpu:.3f} s/page  "
              f"({', '.join(f'{v:.3f}' for v in values)}){cold}")
    trained = await reference_training(ref_session, args.ref_poll_seconds)
    if trained.get("train"):
        print(f"  the same session while its MNIST run trains (worker busy"
              f"{'' if trained['still training'][0] else '; the run had ended before the page loads'}):")
        for kind in ("train", "poll", "home", "mnist", "cancel"):
            if trained.get(kind):
                print(f"    {kind:<8} median {statistics.median(trained[kind]):.3f} s  max {max(trained[kind]):.3f} s  "
                      f"(n={len(trained[kind])})")
    print(f"  other processes used {phase.stop()['others']:.0%} of the CPU meanwhile")
    single_all = statistics.median([v for kind, values in ref.items() for v in (values[1:] if kind != "home" else values)])

    n, m = args.sessions, args.memory_sessions or args.sessions
    print(f"\n3. Memory: {m - 1} more sessions open Home and a lab one after another, then stay idle")
    await asyncio.sleep(2.0)
    rss_1 = await settled_rss(server)
    idle_sessions, rss_steps, seq_times = await memory(server, m - 1, args.timeout)
    await asyncio.sleep(3.0)
    rss_n = await settled_rss(server)
    per_session = (rss_n - rss_1) / (m - 1) if m > 1 else math.nan
    counts = list(range(2, m + 1))
    slope = (statistics.linear_regression(counts, rss_steps).slope if len(counts) >= 2 else math.nan)
    print(f"  server RSS with 1 session {rss_1:.1f} MB, with {m} idle sessions {rss_n:.1f} MB "
          f"({rss_n - rss_1:+.1f} MB)")
    print(f"  per idle session: {per_session:.2f} MB; slope of RSS over the {m - 1} opens: {slope:.2f} MB/session")
    print(f"  their page loads, one at a time: {describe(seq_times)}")
    for session in idle_sessions:
        await session.close()

    print(f"\n4. Load: {n} sessions at once (ramp {args.ramp:g} s): Home, a lab, Train, "
          f"{args.poll_seconds:g} s of live polls, Cancel")
    await quiet(server, args)
    latencies, outcome, sessions, shares, wall = await load(server, args)
    print(f"  took {wall:.1f} s; CPU used, as shares of the {CPUS} cores: server {shares['server']:.0%}, "
          f"worker {shares['worker']:.0%}, this load generator {shares['client']:.0%}, "
          f"other processes and the kernel {shares['others']:.0%}, stolen by the hypervisor {shares['stolen']:.0%}")
    kinds = ["home", "lab", *[f"lab:{lab}" for lab in LABS], "train", *[f"train:{lab}" for lab in LABS],
             "poll", *[f"poll:{lab}" for lab in LABS], "rerun", *[f"rerun:{lab}" for lab in LABS], "cancel"]
    print_table("  page response (s), send rerun_script -> script_finished:", latencies, kinds)
    page_kinds = ("home", "lab", "train", "rerun", "cancel")
    pages = latencies.all(page_kinds)
    everything = latencies.all(("home", "lab", "train", "rerun", "cancel", "poll"))
    print(f"  {'full page runs':<20} {describe(pages)}")
    print(f"  {'all responses':<20} {describe(everything)}")
    print(f"  Train presses: {outcome.accepted} accepted (queued or running), {outcome.refused} refused, "
          f"{outcome.unclear} unclear; {outcome.cancelled} cancelled at the end")
    for body, count in outcome.refusals.items():
        print(f"    refused {count}x: {body}")
    for failure in outcome.failures:
        print(f"  ! {failure}")
    for exception in outcome.exceptions[:10]:
        print(f"  ! exception on the page: {exception}")

    await asyncio.sleep(3.0)
    rss_after = server.rss_mb()
    print(f"  server RSS after the load, {n} load sessions idle (+{n - 1} closed ones Streamlit keeps "
          f"for reconnecting): {rss_after:.1f} MB")
    for session in sessions + [ref_session]:
        await session.close()

    p95_pages, p95_all = percentile(pages, 95), percentile(everything, 95)
    slowest = max((k for k in latencies.by_kind if ":" in k),
                  key=lambda k: percentile(latencies.by_kind[k], 95), default=None)
    print("\nSummary")
    print(f"  p95 page response: {p95_pages:.3f} s over {len(pages)} full page runs (goal < {GOAL_P95_SECONDS:g} s): "
          f"{'met' if p95_pages < GOAL_P95_SECONDS else 'NOT met'}")
    print(f"  p95 of every response, live-panel polls included: {p95_all:.3f} s over {len(everything)}")
    if slowest:
        print(f"  slowest kind by p95: {slowest} ({percentile(latencies.by_kind[slowest], 95):.3f} s)")
    print(f"  ratio p95 under load / single-session median page load ({single_all:.3f} s): "
          f"{p95_pages / single_all:.1f}")
    for lab in LABS:
        values = latencies.by_kind.get(f"lab:{lab}", [])
        if values:
            print(f"    {lab:<10} opening under load p95 {percentile(values, 95):.3f} s / alone {single[lab]:.3f} s"
                  f" = {percentile(values, 95) / single[lab]:.1f}")
    print(f"  memory per idle session: {per_session:.2f} MB (goal < {GOAL_MB_PER_IDLE_SESSION:g} MB): "
          f"{'met' if per_session < GOAL_MB_PER_IDLE_SESSION else 'NOT met'}; "
          f"total {rss_n:.0f} MB with {m} sessions (server process only)")
    if shares["others"] > 0.05:
        print(f"  note: other processes used {shares['others']:.0%} of the CPU during the load phase")
    return 0 if not outcome.failures else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=30)
    parser.add_argument("--poll-seconds", type=float, default=20.0, help="how long each session keeps polling after Train")
    parser.add_argument("--rerun-interval", type=float, default=2.0, help="full reruns on a page without a live panel")
    parser.add_argument("--ramp", type=float, default=0.0, help="sessions start at random within this many seconds")
    parser.add_argument("--ref-repeats", type=int, default=3)
    parser.add_argument("--ref-poll-seconds", type=float, default=5.0,
                        help="polls of the single reference session while its run trains")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for one page response")
    parser.add_argument("--warmup-timeout", type=float, default=240.0)
    parser.add_argument("--memory-sessions", type=int, default=0,
                        help="idle sessions for the memory phase (default: --sessions); more gives a finer per-session figure")
    parser.add_argument("--quiet-wait", type=float, default=60.0,
                        help="before the reference and load phases, wait up to this long for other processes to go quiet")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--option", action="append", default=[], metavar="NAME=VALUE",
                        help="a Streamlit config option for the server, e.g. runner.postScriptGC=false")
    args = parser.parse_args()
    if args.sessions < 1:
        parser.error("--sessions must be at least 1")
    random.seed(args.seed)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 4096)), hard))

    with tempfile.TemporaryDirectory(prefix="load_test_") as tmp:
        server = Server(Path(tmp) / "server.log", Path(tmp) / "runs.sqlite", args.option)
        try:
            code = asyncio.run(main_async(args, server))
        except (Exception, KeyboardInterrupt) as error:
            print(f"\n! {type(error).__name__}: {error}")
            server.log.flush()
            tail = Path(server.log.name).read_text(errors="replace").splitlines()[-20:]
            if tail:
                print("  last lines of the server log:\n    " + "\n    ".join(tail))
            code = 130 if isinstance(error, KeyboardInterrupt) else 1
        finally:
            worker_pids = server.children() if server.process.poll() is None else []
            server.stop()
        left = [pid for pid in [server.pid, *worker_pids] if Path(f"/proc/{pid}").exists()]
        print(f"\nServer stopped; processes left: {left or 'none'}")
    return code


if __name__ == "__main__":
    sys.exit(main())
