"""The supervisor's decisions: a pure ``plan(state, now) -> list[Action]`` and pure reducers.

Owns: the master's state (workers with their phase, counters and timers; the mode; the target
count; the current generation), every rule about when to spawn, stop, abort or kill a worker
and when to halt, and how observed facts (a fork, a READY, a heartbeat, an exit) change the
state. Nothing here does I/O, reads the clock or forks: the arbiter feeds facts in, asks for a
plan, performs the actions and records them. Tests drive it with plain values.

Theory of operation
-------------------
A worker moves BOOTING -> READY -> (STOPPING | ABORTING) -> KILLING -> gone (reaped).
The master is RUNNING until TERM (DRAINING: graceful stop of everyone), INT/QUIT (QUICK) or a
failure during the first boot (HALTING: quick stop, then exit 3 with the worker's error).

While RUNNING the policy keeps ``target`` workers that are *current*: of the current
generation (HUP increments it) and under their request and memory limits. A READY worker that
is not current is *retiring*. Replacements are ready-gated: one new worker is spawned while
none is booting, and a retiring worker is stopped only once enough current workers are READY
(``ready current + retiring > target``), so serving capacity never drops below ``target``
during a reload or a recycle, and below ``target - 1`` only while a crashed worker's
replacement boots. A worker that exits on its own is a crash: its slot is refilled after an
exponential backoff (0 for the first crash) so the others keep serving and the master never
halts. A new worker that fails to boot while older generations still serve ends the reload
(``reload_failed``): the old workers stay and keep serving.

Heartbeats come from the worker's event loop; a READY worker silent for ``timeout_s`` (or a
BOOTING one past ``boot_timeout_s``) is aborted (SIGABRT: faulthandler dumps its threads'
tracebacks) and killed ``kill_grace_s`` later; a STOPPING worker is killed at
``graceful_timeout_s``.

Imports: stdlib only.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

__all__ = [
    "Abort",
    "Action",
    "Booted",
    "Cause",
    "Halt",
    "Kill",
    "Mode",
    "Phase",
    "QuickStop",
    "Settings",
    "Spawn",
    "State",
    "Stop",
    "Worker",
    "beat",
    "exited",
    "initial_state",
    "next_deadline",
    "plan",
    "ready",
    "record",
    "request_reload",
    "request_stop",
    "scale",
    "spawn_failed",
    "spawned",
    "stop_limit",
    "update_rss",
    "update_settings",
]

EXIT_BOOT_ERROR = 3


class Phase(enum.Enum):
    BOOTING = "booting"
    READY = "ready"
    STOPPING = "stopping"
    ABORTING = "aborting"
    KILLING = "killing"


class Mode(enum.Enum):
    RUNNING = "running"
    DRAINING = "draining"
    QUICK = "quick"
    HALTING = "halting"


class Cause(enum.Enum):
    CRASH = "crash"
    TIMEOUT = "timeout"
    BOOT_TIMEOUT = "boot_timeout"
    MAX_REQUESTS = "max_requests"
    MEMORY = "memory"
    RELOAD = "reload"
    SCALE = "scale"
    SHUTDOWN = "shutdown"
    UPGRADE = "upgrade"  # a new master (USR2) took over the sockets: retire, no drain delay


@dataclass(frozen=True)
class Settings:
    timeout_s: float = 30.0
    boot_timeout_s: float = 60.0
    graceful_timeout_s: float = 30.0
    drain_delay_s: float = 0.0  # a worker stopped for shutdown serves this long before draining
    kill_grace_s: float = 3.0  # after SIGABRT, time to dump tracebacks before SIGKILL
    quick_timeout_s: float = 5.0  # after a quick stop, time before SIGKILL
    max_worker_memory_bytes: int = 0
    backoff_base_s: float = 0.25
    backoff_cap_s: float = 10.0
    backoff_reset_s: float = 10.0  # a worker READY this long resets the crash count


@dataclass(frozen=True)
class Worker:
    pid: int
    slot: int
    generation: int
    started_at: float
    phase: Phase = Phase.BOOTING
    ready_at: float | None = None
    last_beat_at: float = 0.0
    signal_at: float = 0.0  # when the current STOPPING/ABORTING/KILLING signal was sent
    stop_cause: Cause | None = None
    quick: bool = False
    max_requests: int = 0  # this worker's limit, jitter included; 0: none
    requests: int = 0
    inflight: int = 0
    connections: int = 0
    lag_s: float = 0.0
    rss_bytes: int = 0
    draining: bool = False

    @property
    def active(self) -> bool:
        return self.phase in (Phase.BOOTING, Phase.READY)


@dataclass(frozen=True)
class State:
    settings: Settings
    target: int
    workers: tuple[Worker, ...] = ()
    mode: Mode = Mode.RUNNING
    generation: int = 1
    booted: bool = False
    reload_failed: bool = False
    failures: int = 0  # consecutive crashes
    respawn_at: float = 0.0
    exit_code: int = 0
    error: str | None = None  # the first-boot failure that halts the master
    reloads: int = 0
    restarts: Mapping[str, int] = field(default_factory=dict)
    stop_cause: Cause = Cause.SHUTDOWN  # how DRAINING stops workers

    def worker(self, pid: int) -> Worker | None:
        for worker in self.workers:
            if worker.pid == pid:
                return worker
        return None


# --------------------------------------------------------------------------- actions


@dataclass(frozen=True)
class Spawn:
    slot: int
    generation: int
    cause: Cause | None = None  # None: initial boot or scale-up


@dataclass(frozen=True)
class Stop:
    """Graceful stop (SIGTERM): drain, then exit."""

    pid: int
    cause: Cause


@dataclass(frozen=True)
class QuickStop:
    """Quick stop (SIGQUIT): close connections and exit now."""

    pid: int


@dataclass(frozen=True)
class Abort:
    """SIGABRT: the worker's faulthandler dumps every thread's traceback, then it dies."""

    pid: int
    cause: Cause


@dataclass(frozen=True)
class Kill:
    pid: int


@dataclass(frozen=True)
class Booted:
    """Every worker of the first boot is READY."""


@dataclass(frozen=True)
class Halt:
    code: int
    reason: str


Action = Spawn | Stop | QuickStop | Abort | Kill | Booted | Halt


# --------------------------------------------------------------------------- reducers


def initial_state(settings: Settings, target: int) -> State:
    return State(settings=settings, target=max(1, target))


def _replace_worker(state: State, pid: int, **changes: object) -> State:
    workers = tuple(
        dataclasses.replace(w, **changes) if w.pid == pid else w  # type: ignore[arg-type]
        for w in state.workers
    )
    return dataclasses.replace(state, workers=workers)


def _count(restarts: Mapping[str, int], cause: Cause) -> dict[str, int]:
    counts = dict(restarts)
    counts[cause.value] = counts.get(cause.value, 0) + 1
    return counts


def spawned(
    state: State, *, pid: int, slot: int, generation: int, now: float, max_requests: int = 0
) -> State:
    worker = Worker(
        pid=pid,
        slot=slot,
        generation=generation,
        started_at=now,
        last_beat_at=now,
        max_requests=max_requests,
    )
    return dataclasses.replace(state, workers=(*state.workers, worker))


def spawn_failed(state: State, now: float) -> State:
    """``fork`` itself failed (EAGAIN, ENOMEM): back off like a crash."""
    failures = state.failures + 1
    return dataclasses.replace(
        state, failures=failures, respawn_at=now + _backoff(state.settings, failures)
    )


def ready(state: State, pid: int, now: float) -> State:
    worker = state.worker(pid)
    if worker is None or worker.phase != Phase.BOOTING:
        return state
    return _replace_worker(state, pid, phase=Phase.READY, ready_at=now, last_beat_at=now)


def beat(
    state: State,
    pid: int,
    now: float,
    *,
    requests: int = 0,
    inflight: int = 0,
    connections: int = 0,
    lag_s: float = 0.0,
    draining: bool = False,
) -> State:
    if state.worker(pid) is None:
        return state
    return _replace_worker(
        state,
        pid,
        last_beat_at=now,
        requests=requests,
        inflight=inflight,
        connections=connections,
        lag_s=lag_s,
        draining=draining,
    )


def update_rss(state: State, rss: Mapping[int, int]) -> State:
    workers = tuple(
        dataclasses.replace(w, rss_bytes=rss[w.pid]) if w.pid in rss else w for w in state.workers
    )
    return dataclasses.replace(state, workers=workers)


def _backoff(settings: Settings, failures: int) -> float:
    if failures <= 1:
        return 0.0
    return float(min(settings.backoff_cap_s, settings.backoff_base_s * 2 ** (failures - 2)))


def exited(state: State, pid: int, now: float, *, error: str | None = None) -> State:
    """A worker was reaped. Unexpected exits are crashes (or boot failures)."""
    worker = state.worker(pid)
    if worker is None:
        return state
    workers = tuple(w for w in state.workers if w.pid != pid)
    state = dataclasses.replace(state, workers=workers)
    # A stopped or killed worker exiting is expected; an aborted one (heartbeat timeout) is
    # not: it was already counted as a restart, but it backs off like a crash.
    expected = worker.phase in (Phase.STOPPING, Phase.KILLING) or state.mode != Mode.RUNNING
    boot_failure = worker.ready_at is None and worker.stop_cause is None

    if boot_failure and state.mode == Mode.RUNNING:
        if not state.booted:
            reason = error or f"worker {pid} exited before it was ready"
            return dataclasses.replace(
                state, mode=Mode.HALTING, exit_code=EXIT_BOOT_ERROR, error=reason
            )
        if any(w.generation < worker.generation for w in workers):
            # The new generation cannot boot while an older one serves: the reload ends here
            # and the old workers keep serving.
            state = dataclasses.replace(state, reload_failed=True, error=error)
    if expected:
        return state
    up_for = now - worker.ready_at if worker.ready_at is not None else 0.0
    failures = 1 if up_for >= state.settings.backoff_reset_s else state.failures + 1
    restarts = state.restarts
    if worker.phase != Phase.ABORTING and state.mode == Mode.RUNNING:
        restarts = _count(restarts, Cause.CRASH)
    return dataclasses.replace(
        state,
        failures=failures,
        respawn_at=now + _backoff(state.settings, failures),
        restarts=restarts,
    )


def request_stop(state: State, *, quick: bool, handover: bool = False) -> State:
    """TERM (graceful), INT/QUIT (quick); ``handover``: a new master serves the sockets."""
    if quick:
        return dataclasses.replace(state, mode=Mode.QUICK)
    if state.mode in (Mode.QUICK, Mode.HALTING):
        return state
    cause = Cause.UPGRADE if handover else Cause.SHUTDOWN
    return dataclasses.replace(state, mode=Mode.DRAINING, stop_cause=cause)


def request_reload(state: State) -> State:
    """HUP: a new generation replaces every worker, one ready-gated step at a time."""
    if state.mode != Mode.RUNNING:
        return state
    return dataclasses.replace(
        state, generation=state.generation + 1, reload_failed=False, reloads=state.reloads + 1
    )


def scale(state: State, delta: int) -> State:
    return dataclasses.replace(state, target=max(1, state.target + delta))


def update_settings(state: State, settings: Settings, target: int | None = None) -> State:
    return dataclasses.replace(
        state, settings=settings, target=state.target if target is None else max(1, target)
    )


def record(state: State, action: Action, now: float) -> State:
    """The state after the arbiter performed ``action`` (a signal was sent)."""
    if isinstance(action, Stop):
        restarts = state.restarts
        if action.cause in (Cause.RELOAD, Cause.MAX_REQUESTS, Cause.MEMORY):
            restarts = _count(restarts, action.cause)
        state = dataclasses.replace(state, restarts=restarts)
        return _replace_worker(
            state, action.pid, phase=Phase.STOPPING, signal_at=now, stop_cause=action.cause
        )
    if isinstance(action, QuickStop):
        return _replace_worker(
            state,
            action.pid,
            phase=Phase.STOPPING,
            signal_at=now,
            quick=True,
            stop_cause=Cause.SHUTDOWN,
        )
    if isinstance(action, Abort):
        state = dataclasses.replace(state, restarts=_count(state.restarts, action.cause))
        return _replace_worker(state, action.pid, phase=Phase.ABORTING, signal_at=now)
    if isinstance(action, Kill):
        return _replace_worker(state, action.pid, phase=Phase.KILLING, signal_at=now)
    if isinstance(action, Booted):
        return dataclasses.replace(state, booted=True)
    return state


# --------------------------------------------------------------------------- the plan


def plan(state: State, now: float) -> list[Action]:
    """Every action the master should take now. Pure: same input, same output."""
    actions: list[Action] = list(_escalations(state, now))
    if state.mode != Mode.RUNNING:
        actions.extend(_stopping(state, now))
        return actions
    escalated = {a.pid for a in actions if isinstance(a, Abort | Kill)}
    actions.extend(_running(state, now, escalated))
    return actions


def _escalations(state: State, now: float) -> Iterable[Action]:
    settings = state.settings
    for w in state.workers:
        if w.phase == Phase.ABORTING and now - w.signal_at >= settings.kill_grace_s:
            yield Kill(w.pid)
        elif w.phase == Phase.STOPPING:
            if now - w.signal_at >= stop_limit(settings, w):
                yield Kill(w.pid)
        elif w.phase == Phase.READY and now - w.last_beat_at >= settings.timeout_s:
            yield Abort(w.pid, Cause.TIMEOUT)
        elif w.phase == Phase.BOOTING and now - w.started_at >= settings.boot_timeout_s:
            yield Abort(w.pid, Cause.BOOT_TIMEOUT)


def stop_limit(settings: Settings, w: Worker) -> float:
    """Seconds a STOPPING worker may take before SIGKILL."""
    if w.quick:
        return settings.quick_timeout_s
    if w.stop_cause == Cause.SHUTDOWN:  # it keeps serving for the drain delay first
        return settings.drain_delay_s + settings.graceful_timeout_s
    return settings.graceful_timeout_s


def _stopping(state: State, now: float) -> Iterable[Action]:
    quick = state.mode in (Mode.QUICK, Mode.HALTING)
    for w in state.workers:
        if w.active and not quick:
            yield Stop(w.pid, state.stop_cause)
        elif quick and (w.active or (w.phase == Phase.STOPPING and not w.quick)):
            yield QuickStop(w.pid)
    if not state.workers:
        if state.mode == Mode.HALTING:
            yield Halt(state.exit_code or EXIT_BOOT_ERROR, state.error or "boot failed")
        else:
            yield Halt(0, "stopped")


def retire_cause(state: State, w: Worker) -> Cause | None:
    """Why a READY worker should be replaced, if it should."""
    if w.phase != Phase.READY:
        return None
    if w.generation < state.generation and not state.reload_failed:
        return Cause.RELOAD
    if w.max_requests and w.requests >= w.max_requests:
        return Cause.MAX_REQUESTS
    limit = state.settings.max_worker_memory_bytes
    if limit and w.rss_bytes > limit:
        return Cause.MEMORY
    return None


def _free_slots(state: State) -> Iterator[int]:
    used = {w.slot for w in state.workers}
    slot = 0
    while True:
        if slot not in used:
            yield slot
        slot += 1


def _running(state: State, now: float, escalated: set[int]) -> Iterable[Action]:
    active = [w for w in state.workers if w.active and w.pid not in escalated]
    retiring = [(w, c) for w in active if (c := retire_cause(state, w)) is not None]
    retiring_pids = {w.pid for w, _ in retiring}
    current = [w for w in active if w.pid not in retiring_pids]
    booting = [w for w in current if w.phase == Phase.BOOTING]
    ready_current = [w for w in current if w.phase == Phase.READY]

    if not state.booted and len(ready_current) >= state.target:
        yield Booted()

    needed = state.target - len(current)
    holes = needed - len(retiring)
    spawns: list[Cause | None] = []
    if holes > 0:
        spawns.extend([None] * holes)
    elif needed > 0 and not booting:
        spawns.append(retiring[0][1])  # one ready-gated replacement at a time
    if spawns and now >= state.respawn_at:
        slots = _free_slots(state)
        for cause in spawns:
            yield Spawn(next(slots), state.generation, cause)

    # Stop retiring workers once their replacements are READY (never below target).
    surplus = len(ready_current) + len(retiring) - state.target
    order = sorted(retiring, key=lambda wc: (wc[0].generation, -wc[0].requests, wc[0].slot))
    for w, cause in order[: max(0, surplus)]:
        yield Stop(w.pid, cause)
    if needed < 0:  # TTOU or a smaller --workers after reload: booting first, then high slots
        extra = sorted(current, key=lambda w: (w.phase != Phase.BOOTING, -w.slot))
        for w in extra[:-needed]:
            yield Stop(w.pid, Cause.SCALE)


def next_deadline(state: State, now: float) -> float | None:
    """The earliest time at which ``plan`` may decide something new without a new fact."""
    settings = state.settings
    times: list[float] = []
    if state.mode == Mode.RUNNING and state.respawn_at > now:
        times.append(state.respawn_at)
    for w in state.workers:
        if w.phase == Phase.ABORTING:
            times.append(w.signal_at + settings.kill_grace_s)
        elif w.phase == Phase.STOPPING:
            times.append(w.signal_at + stop_limit(settings, w))
        elif w.phase == Phase.READY:
            times.append(w.last_beat_at + settings.timeout_s)
        elif w.phase == Phase.BOOTING:
            times.append(w.started_at + settings.boot_timeout_s)
    return min(times) if times else None
