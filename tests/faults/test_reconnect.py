"""Lost instrument connections: what must hold.

* The device notices at once (``connected`` 0), reconnects in the background with exponential
  backoff (each attempt logged), and ``connected`` goes back to 1.
* A plan wrapped with ``connection_suspenders`` is suspended meanwhile and completes with every
  point measured (a point cut by the loss is measured again).
* A connection that never comes back ends the run with a clear ``ConnectionError`` within the
  reconnect timeout, never a hang; the events emitted before stay.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

import bluesky.plans as bp
import pytest
from bluesky import RunEngine
from bluesky.preprocessors import suspend_wrapper

from insitu import clock
from insitu.devices.raman import LabSpec6Backend, RamanSpectrometer
from insitu.devices.reconnect import ConnectedSignal, LinkState, Reconnector
from insitu.devices.zahner import ZahnerEIS
from insitu.plans.suspenders import connection_suspenders
from insitu.sim.labspec6 import LabSpec6Emulator
from insitu.sim.sample import GarnetFilm
from insitu.sim.thales_term import TermEmulator

SPEEDUP = 200.0


@pytest.fixture
def fast_clock() -> Iterator[None]:
    clock.set_speedup(SPEEDUP)
    yield
    clock.reset()


@pytest.fixture
def labspec(fast_clock) -> Iterator[LabSpec6Emulator]:
    with LabSpec6Emulator(GarnetFilm(), lambda: 25.0, seed=0) as emulator:
        yield emulator


def make_raman(emulator: LabSpec6Emulator, **kwargs) -> RamanSpectrometer:
    backend = LabSpec6Backend.connect("127.0.0.1", emulator.serve_tcp(), timeout_s=1.0)
    raman = RamanSpectrometer(backend, name="raman", max_laser_power_mW=10.0, **kwargs)
    raman.exposure.put(60.0)  # 0.3 s of wall time at 200x: long enough to be cut
    return raman


@pytest.fixture
def term(fast_clock) -> Iterator[TermEmulator]:
    with TermEmulator(seed=3) as emulator:
        emulator.serve_tcp(0)
        yield emulator


def make_eis(term: TermEmulator, **kwargs) -> ZahnerEIS:
    eis = ZahnerEIS(f"127.0.0.1:{term.port}", name="eis", heartbeat_period=0.2, **kwargs)
    eis.connect()
    return eis


class Run:
    """Runs a plan under a RunEngine, recording documents, messages and ``connected`` values."""

    def __init__(self, device) -> None:
        self.RE = RunEngine({})
        self.documents: list[tuple[str, dict]] = []
        self.messages: list = []
        self.RE.msg_hook = self.messages.append
        self.connected: list[int] = []
        device.connected.subscribe(lambda value, **_: self.connected.append(value), run=False)

    def __call__(self, plan) -> None:
        self.RE(plan, lambda name, doc: self.documents.append((name, doc)))

    def events(self) -> list[dict]:
        return [doc for name, doc in self.documents if name == "event"]

    def points(self) -> list[int]:
        """Sequence numbers measured (a point cut by a suspension may be taken twice)."""
        return sorted({doc["seq_num"] for doc in self.events()})

    def stop(self) -> dict:
        (stop,) = [doc for name, doc in self.documents if name == "stop"]
        return stop

    def justifications(self) -> list[str]:
        return [msg.args[2] for msg in self.messages if msg.command == "_start_suspender"]

    def after_event(self, n: int, action) -> None:
        """Run ``action`` in a thread once ``n`` events have been emitted."""

        def watch() -> None:
            deadline = time.monotonic() + 60
            while len(self.events()) < n and time.monotonic() < deadline:
                time.sleep(0.005)
            action()

        threading.Thread(target=watch, daemon=True).start()


def with_suspenders(plan, device, settle_time: float = 20.0):
    return suspend_wrapper(plan, connection_suspenders(device, settle_time=settle_time))


# --- LabSpec 6 ------------------------------------------------------------------------------------
def test_labspec_disconnect_mid_acquisition_suspends_reconnects_and_completes(labspec, caplog):
    caplog.set_level(logging.WARNING, logger="insitu.devices.reconnect")
    raman = make_raman(labspec)
    run = Run(raman)

    def outage() -> None:
        time.sleep(0.1)  # inside the third exposure
        labspec.inject_fault("disconnect")
        time.sleep(1.2)  # attempts at 0, 0.5 and 1.5 s: the first two are refused
        labspec.clear_fault()

    run.after_event(2, outage)
    try:
        run(with_suspenders(bp.count([raman], num=5), raman))
    finally:
        raman.close()
    assert run.stop()["exit_status"] == "success"
    assert run.points() == [1, 2, 3, 4, 5]
    assert all(event["data"]["raman_spectrum"].size == 1600 for event in run.events())
    assert run.connected == [0, 1]
    assert run.justifications()[0].startswith("raman.connected = 0: raman: link lost (")
    assert raman.reconnector.attempts >= 2
    failed = [r.getMessage() for r in caplog.records if "reconnect attempt" in r.getMessage()]
    assert failed[0].startswith("raman: reconnect attempt 1 failed (")
    assert "next attempt in 0.5 s" in failed[0]
    assert "next attempt in 1.0 s" in failed[1]  # the wait doubles


def test_labspec_that_stops_answering_is_reconnected_once_it_answers_again(labspec):
    raman = make_raman(labspec)
    run = Run(raman)

    def silence() -> None:
        labspec.inject_fault("no_reply")
        time.sleep(2.5)  # the reply timeout is 1 s; reconnects are probed and time out too
        labspec.clear_fault()

    run.after_event(1, silence)
    try:
        run(with_suspenders(bp.count([raman], num=3), raman))
    finally:
        raman.close()
    assert run.stop()["exit_status"] == "success"
    assert run.points() == [1, 2, 3]
    assert run.connected == [0, 1]
    assert "TimeoutError" in run.justifications()[0]


def test_a_trigger_without_suspender_waits_for_the_reconnect_and_measures_again(labspec):
    raman = make_raman(labspec)
    try:
        raman.trigger().wait(10)
        status = raman.trigger()
        time.sleep(0.1)
        labspec.inject_fault("disconnect")
        time.sleep(0.6)
        assert raman.connected.get() == 0 and not status.done
        labspec.clear_fault()
        status.wait(20)
        assert status.success and raman.connected.get() == 1
        assert raman.reconnector.attempts >= 2  # refused while disconnected, then back
        assert raman.spectrum.get().size == 1600
    finally:
        raman.close()


def test_labspec_that_never_comes_back_ends_the_run_with_a_clear_error(labspec):
    raman = make_raman(labspec, reconnect_timeout=2.0)
    run = Run(raman)
    run.after_event(1, lambda: labspec.inject_fault("disconnect"))
    started = time.monotonic()
    try:
        with pytest.raises(
            ConnectionError, match="raman: the link did not come back: .* giving up"
        ):
            run(with_suspenders(bp.count([raman], num=4), raman))
    finally:
        raman.close()
    assert time.monotonic() - started < 30  # bounded by the reconnect timeout, not a hang
    stop = run.stop()
    assert stop["exit_status"] == "fail"
    assert "did not come back" in stop["reason"]
    assert run.points()[0] == 1  # the event emitted before the loss is kept
    assert raman.reconnector.state == LinkState.GAVE_UP


# --- Zahner Term ----------------------------------------------------------------------------------
@pytest.mark.allow_slow(
    "EIS sweeps to 0.1 Hz: minutes of experiment time at the speed-up (issue 17)"
)
def test_thales_connection_dropped_mid_sweep_suspends_and_every_sweep_completes(term):
    eis = make_eis(term)
    run = Run(eis)
    run.after_event(1, lambda: term.inject_fault("drop_connection_mid_sweep"))
    try:
        run(with_suspenders(bp.count([eis], num=3), eis))
    finally:
        eis.destroy()
    assert run.stop()["exit_status"] == "success"
    assert run.points() == [1, 2, 3]
    assert all(event["data"]["eis_z_real"].size == 57 for event in run.events())
    assert run.connected == [0, 1]
    assert "eis.connected = 0: eis: link lost (ZahnerConnectionError" in run.justifications()[0]
    assert not term.potentiostat_on


@pytest.mark.allow_slow(
    "the reconnect backoff runs in wall time while Term is down, plus EIS sweeps"
)
def test_thales_unreachable_for_a_while_then_back(term):
    eis = make_eis(term, reconnect_timeout=40.0)  # a failure surfaces as an error, not a hang
    run = Run(eis)
    cleared = threading.Event()

    def outage() -> None:
        term.inject_fault("unreachable")
        time.sleep(2.0)
        term.clear_fault()
        cleared.set()

    run.after_event(1, outage)
    try:
        run(with_suspenders(bp.count([eis], num=3), eis))
    finally:
        eis.destroy()
    assert cleared.is_set()
    assert run.stop()["exit_status"] == "success"
    assert run.points() == [1, 2, 3]
    assert run.connected == [0, 1]
    assert eis.reconnector.attempts >= 2
    assert not term.potentiostat_on


@pytest.mark.allow_slow("waits out the whole reconnect budget in wall time")
def test_thales_that_never_comes_back_ends_the_run_with_a_clear_error(term):
    eis = make_eis(term, reconnect_timeout=3.0)
    run = Run(eis)
    run.after_event(1, lambda: term.inject_fault("unreachable"))
    started = time.monotonic()
    try:
        with pytest.raises(ConnectionError, match="eis: the link did not come back"):
            run(with_suspenders(bp.count([eis], num=3), eis))
    finally:
        eis.destroy()
    assert time.monotonic() - started < 60
    assert run.stop()["exit_status"] == "fail"
    assert run.points() == [1]


# --- the reconnector on its own -------------------------------------------------------------------
def test_backoff_doubles_up_to_the_cap_then_succeeds():
    signal = ConnectedSignal(name="dev_connected")
    calls: list[float] = []

    def reopen() -> None:
        calls.append(time.monotonic())
        if len(calls) < 5:
            raise ConnectionError("refused")

    reconnector = Reconnector(reopen, signal, owner="dev", initial_delay=0.05, max_delay=0.2)
    reconnector.link_lost(ConnectionError("cable pulled"))
    assert signal.get() == 0
    assert reconnector.wait_settled() == LinkState.UP
    assert signal.get() == 1 and reconnector.attempts == 5
    gaps = [b - a for a, b in zip(calls, calls[1:], strict=False)]
    for gap, expected in zip(gaps, [0.05, 0.1, 0.2, 0.2], strict=True):
        assert gap >= expected * 0.9


def test_give_up_is_published_and_explained():
    signal = ConnectedSignal(name="dev_connected")
    seen: list[int] = []
    signal.subscribe(lambda value, **_: seen.append(value), run=False)

    def reopen() -> None:
        raise ConnectionError("refused")

    reconnector = Reconnector(
        reopen, signal, owner="dev", initial_delay=0.05, max_delay=0.1, give_up_after=0.4
    )
    reconnector.link_lost(ConnectionError("cable pulled"))
    assert reconnector.wait_settled() == LinkState.GAVE_UP
    assert seen == [0, 0]  # dropped, then re-published on giving up
    assert "dev: the link did not come back" in reconnector.failure
    assert "ConnectionError: refused" in reconnector.failure
    with pytest.raises(ConnectionError, match="a new attempt to connect failed too"):
        reconnector.try_once()


def test_a_link_that_keeps_failing_right_after_reconnecting_gives_up():
    signal = ConnectedSignal(name="dev_connected")
    reconnector = Reconnector(lambda: None, signal, owner="dev", max_losses=3)
    for _ in range(3):
        reconnector.link_lost(ConnectionError("garbage"))
        assert reconnector.wait_settled() == LinkState.UP
    reconnector.link_lost(ConnectionError("garbage"))
    assert reconnector.state == LinkState.GAVE_UP
    assert "lost 4 times in a row" in reconnector.failure


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"initial_delay": 0}, "initial_delay 0 s must be a number > 0"),
        ({"max_delay": float("nan")}, "max_delay nan s"),
        ({"give_up_after": -1}, "give_up_after -1 s"),
        ({"initial_delay": 5, "max_delay": 1}, "initial_delay 5 s is above max_delay 1 s"),
        ({"max_losses": 0}, "max_losses 0 must be an integer >= 1"),
    ],
)
def test_reconnector_rejects_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Reconnector(lambda: None, ConnectedSignal(name="c"), owner="dev", **kwargs)
