"""The supervisor's decisions, tested as a pure function: no fork, no signals, no clock."""

from __future__ import annotations

import dataclasses

import pytest

from forkloop.supervisor import policy
from forkloop.supervisor.policy import (
    Abort,
    Booted,
    Cause,
    Halt,
    Kill,
    Mode,
    Phase,
    QuickStop,
    Settings,
    Spawn,
    State,
    Stop,
    plan,
)

SETTINGS = Settings(
    timeout_s=10,
    boot_timeout_s=20,
    graceful_timeout_s=30,
    kill_grace_s=2,
    quick_timeout_s=5,
    backoff_base_s=0.5,
    backoff_cap_s=4,
)


def boot(n: int = 4, now: float = 0.0, **settings: object) -> State:
    """A state with ``n`` READY workers (pids 100..), first boot complete."""
    state = policy.initial_state(dataclasses.replace(SETTINGS, **settings), n)
    for action in plan(state, now):
        assert isinstance(action, Spawn)
        state = policy.spawned(
            state, pid=100 + action.slot, slot=action.slot, generation=action.generation, now=now
        )
    for worker in state.workers:
        state = policy.ready(state, worker.pid, now)
    actions = plan(state, now)
    assert actions == [Booted()]
    return policy.record(state, Booted(), now)


def apply(state: State, now: float, actions: list[policy.Action], next_pid: list[int]) -> State:
    """What the arbiter does, minus the side effects."""
    for action in actions:
        if isinstance(action, Spawn):
            state = policy.spawned(
                state, pid=next_pid[0], slot=action.slot, generation=action.generation, now=now
            )
            next_pid[0] += 1
        else:
            state = policy.record(state, action, now)
    return state


def serving(state: State) -> int:
    return sum(1 for w in state.workers if w.phase == Phase.READY)


def test_first_boot_spawns_every_slot_then_reports_booted() -> None:
    state = policy.initial_state(SETTINGS, 3)
    assert plan(state, 0.0) == [Spawn(0, 1), Spawn(1, 1), Spawn(2, 1)]
    for slot in range(3):
        state = policy.spawned(state, pid=10 + slot, slot=slot, generation=1, now=0.0)
    assert plan(state, 1.0) == []  # booting: wait
    state = policy.ready(state, 10, 1.0)
    state = policy.ready(state, 11, 1.0)
    assert plan(state, 1.5) == []
    state = policy.ready(state, 12, 2.0)
    assert plan(state, 2.0) == [Booted()]


def test_first_boot_failure_halts_with_the_workers_error() -> None:
    state = policy.initial_state(SETTINGS, 2)
    state = policy.spawned(state, pid=10, slot=0, generation=1, now=0.0)
    state = policy.spawned(state, pid=11, slot=1, generation=1, now=0.0)
    state = policy.exited(state, 10, 0.5, error="SyntaxError: invalid syntax (app.py, line 3)")
    assert state.mode == Mode.HALTING
    assert plan(state, 0.5) == [QuickStop(11)]
    state = policy.record(state, QuickStop(11), 0.5)
    assert plan(state, 0.6) == []
    assert plan(state, 5.5) == [Kill(11)]  # quick_timeout_s
    state = policy.exited(policy.record(state, Kill(11), 5.5), 11, 5.6)
    assert plan(state, 5.6) == [Halt(3, "SyntaxError: invalid syntax (app.py, line 3)")]


def test_first_boot_timeout_aborts_then_halts() -> None:
    state = policy.initial_state(SETTINGS, 1)
    state = policy.spawned(state, pid=10, slot=0, generation=1, now=0.0)
    assert plan(state, 19.9) == []
    assert plan(state, 20.0) == [Abort(10, Cause.BOOT_TIMEOUT), Spawn(1, 1)]
    state = policy.record(state, Abort(10, Cause.BOOT_TIMEOUT), 20.0)
    state = policy.exited(state, 10, 20.1)
    assert state.mode == Mode.HALTING
    assert plan(state, 20.1) == [Halt(3, "worker 10 exited before it was ready")]


def test_crash_after_boot_respawns_at_once_then_backs_off_exponentially() -> None:
    state = boot(2)
    pids = [200]
    now = 1.0
    delays = []
    for _ in range(5):
        victim = next(w for w in state.workers if w.slot == 0)
        state = policy.exited(state, victim.pid, now)
        assert state.mode == Mode.RUNNING  # never halts after the first boot
        delays.append(state.respawn_at - now)
        assert plan(state, state.respawn_at - 0.01) == [] or state.respawn_at == now
        actions = plan(state, state.respawn_at)
        assert actions == [Spawn(0, 1)]
        now = state.respawn_at
        state = apply(state, now, actions, pids)
        now += 0.1
        state = policy.ready(state, pids[0] - 1, now)  # crashes again soon after READY
    assert delays == pytest.approx([0.0, 0.5, 1.0, 2.0, 4.0])  # capped at backoff_cap_s
    state = policy.exited(state, next(w for w in state.workers if w.slot == 0).pid, now + 100)
    assert state.respawn_at == now + 100  # a long-lived worker resets the backoff
    assert state.restarts["crash"] == 6


def test_heartbeat_timeout_aborts_kills_and_replaces() -> None:
    state = boot(2)
    state = policy.beat(state, 100, 5.0, requests=7)
    state = policy.beat(state, 101, 9.0)
    assert plan(state, 14.9) == []
    actions = plan(state, 15.0)
    assert actions == [Abort(100, Cause.TIMEOUT), Spawn(0 + 2, 1)]
    state = apply(state, 15.0, actions, [300])
    assert serving(state) == 1
    assert Kill(100) in plan(state, 17.0)  # kill_grace_s after the abort
    assert state.restarts["timeout"] == 1


def test_rolling_reload_is_ready_gated_and_never_below_target() -> None:
    state = policy.request_reload(boot(4))
    pids = [500]
    now = 1.0
    low = 4
    for _ in range(200):
        actions = plan(state, now)
        spawns = [a for a in actions if isinstance(a, Spawn)]
        assert len(spawns) <= 1, "one replacement at a time"
        state = apply(state, now, actions, pids)
        low = min(low, serving(state))
        booting = [w for w in state.workers if w.phase == Phase.BOOTING]
        for w in booting:
            state = policy.ready(state, w.pid, now + 0.5)
        for w in [w for w in state.workers if w.phase == Phase.STOPPING]:
            state = policy.exited(state, w.pid, now + 0.7)
        now += 1.0
        if all(w.generation == 2 for w in state.workers) and not plan(state, now):
            break
    assert low == 4
    assert len({w.slot for w in state.workers}) == 4  # unique slots
    # New workers take the lowest free slot: one booting + one stopping at a time here.
    assert max(w.slot for w in state.workers) <= 5
    assert len(state.workers) == 4
    assert all(w.phase == Phase.READY for w in state.workers)
    assert state.restarts["reload"] == 4


def test_reload_stops_when_a_new_worker_cannot_boot() -> None:
    state = policy.request_reload(boot(3))
    actions = plan(state, 1.0)
    assert actions == [Spawn(3, 2, Cause.RELOAD)]
    state = apply(state, 1.0, actions, [600])
    state = policy.exited(state, 600, 1.5, error="ImportError: broken")
    assert state.mode == Mode.RUNNING
    assert state.reload_failed
    assert plan(state, 5.0) == []  # the old workers keep serving, nothing is stopped
    assert serving(state) == 3
    state = policy.request_reload(state)  # the next HUP tries again
    assert plan(state, 6.0) == [Spawn(3, 3, Cause.RELOAD)]


def test_reload_boot_timeout_also_ends_the_reload() -> None:
    state = policy.request_reload(boot(2))
    state = apply(state, 1.0, plan(state, 1.0), [700])
    for pid in (100, 101):
        state = policy.beat(state, pid, 20.0)
    actions = plan(state, 21.0)
    assert Abort(700, Cause.BOOT_TIMEOUT) in actions
    state = apply(state, 21.0, [a for a in actions if isinstance(a, Abort)], [701])
    state = policy.record(state, Kill(700), 23.0)
    state = policy.exited(state, 700, 23.1)
    assert state.reload_failed
    assert serving(state) == 2


@pytest.mark.parametrize("cause", [Cause.MAX_REQUESTS, Cause.MEMORY])
def test_recycling_uses_the_same_ready_gated_replacement(cause: Cause) -> None:
    state = boot(2, max_worker_memory_bytes=1000)
    state = dataclasses.replace(
        state, workers=tuple(dataclasses.replace(w, max_requests=50) for w in state.workers)
    )
    if cause == Cause.MAX_REQUESTS:
        state = policy.beat(state, 100, 1.0, requests=50)
    else:
        state = policy.update_rss(state, {100: 2000, 101: 10})
    state = policy.beat(state, 101, 1.0, requests=3)
    actions = plan(state, 1.0)
    assert actions == [Spawn(2, 1, cause)]
    state = apply(state, 1.0, actions, [800])
    assert plan(state, 2.0) == []  # the old one serves until the new one is READY
    state = policy.ready(state, 800, 2.0)
    assert plan(state, 2.0) == [Stop(100, cause)]
    state = policy.record(state, Stop(100, cause), 2.0)
    assert state.restarts[cause.value] == 1
    state = policy.exited(state, 100, 3.0)
    assert plan(state, 3.0) == []
    assert state.failures == 0


def test_many_workers_over_max_requests_are_replaced_one_at_a_time() -> None:
    state = boot(4)
    state = dataclasses.replace(
        state,
        workers=tuple(dataclasses.replace(w, max_requests=10, requests=99) for w in state.workers),
    )
    actions = plan(state, 1.0)
    assert actions == [Spawn(4, 1, Cause.MAX_REQUESTS)]


def test_ttin_ttou_change_the_worker_count() -> None:
    state = policy.scale(boot(2), +1)
    assert plan(state, 1.0) == [Spawn(2, 1)]
    state = apply(state, 1.0, plan(state, 1.0), [900])
    state = policy.ready(state, 900, 1.5)
    assert plan(state, 1.5) == []
    state = policy.scale(state, -1)
    assert plan(state, 2.0) == [Stop(900, Cause.SCALE)]  # the highest slot goes
    state = policy.scale(policy.scale(state, -5), -1)
    assert state.target == 1  # never below one


def test_graceful_stop_drains_everyone_then_kills_stragglers_and_exits_zero() -> None:
    state = policy.request_stop(boot(2, drain_delay_s=5), quick=False)
    actions = plan(state, 1.0)
    assert actions == [Stop(100, Cause.SHUTDOWN), Stop(101, Cause.SHUTDOWN)]
    state = apply(state, 1.0, actions, [0])
    assert plan(state, 10.0) == []  # no spawns while draining
    state = policy.exited(state, 100, 10.0)
    assert plan(state, 35.9) == []
    assert plan(state, 36.0) == [Kill(101)]  # drain delay + graceful timeout
    state = policy.exited(policy.record(state, Kill(101), 36.0), 101, 36.1)
    assert plan(state, 36.1) == [Halt(0, "stopped")]


def test_quick_stop_after_graceful_escalates() -> None:
    state = policy.request_stop(boot(1), quick=False)
    state = apply(state, 1.0, plan(state, 1.0), [0])
    state = policy.request_stop(state, quick=True)
    assert plan(state, 2.0) == [QuickStop(100)]
    state = policy.record(state, QuickStop(100), 2.0)
    assert plan(state, 3.0) == []
    assert plan(state, 7.0) == [Kill(100)]


def test_plan_is_pure() -> None:
    state = policy.request_reload(boot(3))
    before = dataclasses.asdict(state)
    assert plan(state, 1.0) == plan(state, 1.0)
    assert dataclasses.asdict(state) == before


def test_next_deadline_tracks_the_earliest_timer() -> None:
    state = boot(2)
    state = policy.beat(state, 100, 3.0)
    assert policy.next_deadline(state, 4.0) == 10.0  # pid 101 last beat at 0 + timeout 10
    state = policy.record(state, Abort(101, Cause.TIMEOUT), 4.0)
    assert policy.next_deadline(state, 4.0) == 6.0  # kill grace


def test_snapshot_reports_phases_restarts_and_per_worker_figures() -> None:
    from forkloop.supervisor.snapshot import take

    state = boot(2)
    state = policy.beat(state, 100, 1.0, requests=10, inflight=2, connections=3, lag_s=0.004)
    state = policy.update_rss(state, {100: 50_000_000})
    state = policy.record(state, Abort(101, Cause.TIMEOUT), 2.0)
    state = policy.request_reload(state)
    snap = take(state, 3.0)
    assert snap.workers_by_phase == {
        "booting": 0,
        "ready": 1,
        "stopping": 0,
        "aborting": 1,
        "killing": 0,
    }
    assert snap.restarts_by_cause["timeout"] == 1
    assert snap.restarts_by_cause["crash"] == 0
    assert snap.reloads == 1
    assert snap.generation == 2
    first = snap.workers[0]
    assert (first.slot, first.pid, first.requests, first.inflight) == (0, 100, 10, 2)
    assert first.loop_lag_s == 0.004
    assert first.rss_bytes == 50_000_000
    assert first.uptime_s == 3.0


def test_upgrade_handover_retires_without_the_drain_delay() -> None:
    state = policy.request_stop(boot(1, drain_delay_s=30), quick=False, handover=True)
    assert plan(state, 1.0) == [Stop(100, Cause.UPGRADE)]
    state = policy.record(state, Stop(100, Cause.UPGRADE), 1.0)
    assert plan(state, 31.0) == [Kill(100)]  # graceful timeout only, no drain delay
