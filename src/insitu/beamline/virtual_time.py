"""Held time: a simulated beamline's experiment time stands still while its RunEngine works.

At a speed-up of 2000 a millisecond the RunEngine spends between two waits (sending the cool-down
command, emitting an event, a loaded machine) is two seconds the virtual film spends at its
anneal temperature; a 650 C film is sensitive to every minute (issue 17). With virtual time on
(``simulation.virtual_time``), experiment time is held (:func:`insitu.clock.hold`) while the
RunEngine runs a plan and released only while it waits:

* ``sleep``: released until exactly the sleep's end (:func:`insitu.clock.release` with
  ``until``), so the plan resumes at the experiment time it asked for, whenever it wakes;
* ``wait`` on a group of statuses: released; held again the moment the last status of the
  group completes (from the thread that completes it), not when the RunEngine notices; a group
  whose statuses all take no experiment time (:func:`insitu.clock.mark_instant`: the live
  analysis of a spectrum, which a closed-loop plan waits for) keeps time held, so the plan
  reacts at the experiment time of the spectrum, as it would in a lab; a group whose statuses
  all said when they end (:func:`insitu.clock.expect_end`: a spectrometer's exposure) runs at
  full speed only to the last of those ends, then at ``PAST_EXPECTED_END_RATE`` until the
  RunEngine hears of it (the wall latency of reading a spectrum back is not minutes of anneal);
  an instrument that says it again during the wait (a sweep: wire chatter first, at once at the
  slow rate, then its measuring) moves the deadline;
* ``wait`` on statuses that say nothing of when they end (a setting's put: wire chatter):
  released, but pinned at its start (:func:`insitu.clock.pin`) until they complete, so the next
  command goes out at the same experiment time in every run (a status that needs time to pass
  gets it once the pin lapses, ``CHATTER_WALL_LIMIT_S``);
* after a ``sleep`` or a ``wait``, instruments that pinned the current instant (a stage poll
  due there, a spectrum being read) act before the plan goes on: otherwise which came first,
  and so what the plan read, would change from run to run;
* ``wait_for`` (suspenders waiting for a signal, among others): released until it returns;
* paused or idle: released (time goes on for a person at the session).

Instruments that are not simulated never get here (:func:`enable` refuses a speed-up of 1).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any

from insitu import clock
from insitu.compat.bluesky_run_engine import command, statuses_of_group

__all__ = ["enable"]

logger = logging.getLogger(__name__)

# Experiment seconds per wall second once a wait passes the time its statuses said they would
# end (an exposure's end): the wall latency of reading the spectrum then costs 100x itself (the
# speed-up at which the campaign's results were measured to agree, benchmarks/bench_held_time.py),
# not the full speed-up; an exposure the emulator started a few ms late still ends.
PAST_EXPECTED_END_RATE = 100.0
# Wall seconds experiment time stands at a wait whose statuses said nothing of when they end
# (settings: milliseconds of wire chatter) before it runs on for them.
CHATTER_WALL_LIMIT_S = 1.0
# Wall seconds a plan waits, after a sleep or a wait, for instruments to act at that instant.
PIN_ACT_WALL_LIMIT_S = 2.0


async def _let_instruments_act() -> None:
    """Before the plan goes on at this instant, let instruments that pinned it act there.

    A stage poll due at the very instant a plan's sleep ends would otherwise race the plan's
    next read: which of the two came first, and so what the plan read, would change from run
    to run. Bounded in wall time like the pins themselves.
    """
    deadline = time.monotonic() + PIN_ACT_WALL_LIMIT_S
    while clock.pinned_now() and time.monotonic() < deadline:
        await asyncio.sleep(0.0005)


def _hold_when_all_done(engine: Any, statuses: list[Any], lock: threading.Lock) -> list[bool]:
    """Hold time when the last of ``statuses`` completes, while the returned flag is True.

    The wait clears the flag when it ends: a status that completes after its wait was cut
    short (a suspension, a pause) must not hold time for whatever the RunEngine does next.
    ``lock`` orders this hold with the wait's releases from instruments' threads.
    """
    waiting = [True]

    def finished(status=None) -> None:
        with lock:
            if waiting[0] and all(s.done for s in statuses) and engine.state == "running":
                clock.hold()

    for status in statuses:
        status.add_callback(finished)
    return waiting


def enable(engine: Any) -> None:
    """Hold experiment time while ``engine`` works, on the (simulated, sped-up) clock.

    Raises
    ------
    ValueError
        At a speed-up of 1 (real instruments: their time is the wall clock's, never held).
    """
    if clock.speedup() == 1.0:
        raise ValueError("virtual time is for simulated beamlines (speed-up above 1)")
    original_wait = command(engine, "wait")
    original_wait_for = command(engine, "wait_for")

    def hold_if_running() -> None:
        # A pause or suspension cancels the wait first and then changes state: never hold
        # for a RunEngine that is no longer running (paused time goes on).
        if engine.state == "running":
            clock.hold()

    async def sleep(msg):
        """Sleep the experiment time the message asks for (its wall equivalent), exactly."""
        (wall_seconds,) = msg.args
        target = clock.now() + clock.to_experiment(wall_seconds)
        clock.release(until=target)
        try:
            while (left := target - clock.now()) > 0:
                if clock.held():  # nothing else may hold time while the plan sleeps
                    clock.release(until=target)
                await asyncio.sleep(clock.to_wall(left))
        finally:
            hold_if_running()
        await _let_instruments_act()

    async def wait(msg):
        group = msg.args[0] if msg.args else msg.kwargs.get("group")
        statuses = statuses_of_group(engine, group)
        if statuses and all(clock.is_instant(status) for status in statuses):
            return await original_wait(msg)
        waiting = [True]
        lock = threading.Lock()  # a late change from an instrument's thread never releases
        # the clock after this wait has ended

        def follow_expected_ends() -> None:
            """Release time to the last expected end of the group (again when one changes)."""
            with lock:
                ends = [clock.expected_end(status) for status in statuses if not status.done]
                if waiting[0] and ends and None not in ends:
                    clock.release(until=max(ends), then=PAST_EXPECTED_END_RATE)

        # Statuses already done (a soft signal's trigger) wait for nothing.
        ends = [clock.expected_end(status) for status in statuses if not status.done]
        pinned = None
        if ends and None not in ends:
            for status in statuses:
                status.insitu_on_expected_end = follow_expected_ends
            follow_expected_ends()
        else:
            # Nothing said it takes experiment time (a setting's put, wire chatter): time
            # stands here while it completes, so the next command goes out at the same
            # experiment time in every run; a status that does need time to pass gets it once
            # the pin lapses.
            pinned = clock.pin(wall_limit=CHATTER_WALL_LIMIT_S)
            clock.release()
        done_flag = _hold_when_all_done(engine, statuses, lock) if statuses else [False]
        try:
            result = await original_wait(msg)
        finally:
            with lock:
                waiting[0] = done_flag[0] = False
            for status in statuses:
                status.insitu_on_expected_end = None
            hold_if_running()
            if pinned is not None:
                pinned.release()
        await _let_instruments_act()
        return result

    async def wait_for(msg):
        clock.release()
        try:
            return await original_wait_for(msg)
        finally:
            hold_if_running()

    engine.register_command("sleep", sleep)
    engine.register_command("wait", wait)
    engine.register_command("wait_for", wait_for)
    previous_hook = engine.state_hook

    def state_hook(new, old):
        if new == "running":
            clock.hold()
        else:
            clock.release()
        if previous_hook is not None:
            previous_hook(new, old)

    engine.state_hook = state_hook
    clock.set_virtual(True)
