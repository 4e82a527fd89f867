"""The signal relay acts on a signal whose Python handler the main thread did not run in time,
and stays out of the way when the handler runs."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from insitu.beamline.signal_relay import GRACE_S, SignalRelay

SIGNUM = signal.SIGUSR1


@pytest.fixture
def free_wakeup_fd():
    """The wakeup fd free for the relay (restored to whoever had it after the test)."""
    previous = signal.set_wakeup_fd(-1)
    previous_handler = signal.getsignal(SIGNUM)
    yield
    signal.signal(SIGNUM, previous_handler)
    signal.set_wakeup_fd(previous)


def wait_until(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def blind_main_thread(relay_acts: bool):
    """Send SIGNUM while the main thread cannot run its handler; what the relay did."""
    handled, missed = [], []
    relay = None

    def handler(signum, frame):
        relay.acknowledge(signum)
        handled.append(signum)

    def on_missed(signum):
        missed.append(signum)
        return relay_acts

    signal.signal(SIGNUM, handler)
    relay = SignalRelay([SIGNUM], on_missed).start()
    assert relay.active
    # The main thread blind to the signal, as when it arrives just before a wait without a
    # timeout: the main thread blocks it (the kernel gives it to another thread, whose C handler
    # only records it) and waits in C on a lock released after the grace period.
    blind = threading.Lock()
    blind.acquire()
    release = threading.Timer(GRACE_S + 1.5, blind.release)
    send = threading.Timer(0.05, os.kill, (os.getpid(), SIGNUM))
    before = signal.pthread_sigmask(signal.SIG_BLOCK, {SIGNUM})
    try:
        release.start()
        send.start()
        blind.acquire()  # no bytecode runs here, so no Python handler either
        assert missed == [SIGNUM]  # the relay was asked while the main thread was blind
        resent = SIGNUM in signal.sigpending()  # pending for the main thread, which blocks it
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)
        send.join()
        release.join()
    wait_until(lambda: handled)  # the main thread's handler runs once it can
    time.sleep(GRACE_S * 2)  # the resend's own wakeup byte is not acted on again
    assert missed == [SIGNUM]
    relay.stop()
    assert signal.set_wakeup_fd(-1) == -1  # the fd given back
    return resent


def test_a_signal_the_main_thread_cannot_take_is_acted_on_and_resent(free_wakeup_fd):
    assert blind_main_thread(relay_acts=True)


def test_a_signal_nothing_acted_on_is_not_resent(free_wakeup_fd):
    """An ignored signal (``nohup``): the relay is asked, nothing acts, nothing is resent."""
    assert not blind_main_thread(relay_acts=False)


def test_a_forked_childs_signal_does_not_reach_the_parents_relay(free_wakeup_fd):
    missed = []
    signal.signal(SIGNUM, lambda signum, frame: None)
    relay = SignalRelay([SIGNUM], lambda signum: missed.append(signum) or True).start()
    assert relay.active
    pid = os.fork()
    if pid == 0:  # the child: its own signal, its own business
        try:
            os.kill(os.getpid(), SIGNUM)
            time.sleep(0.05)
        finally:
            os._exit(0)
    assert os.waitpid(pid, 0)[1] == 0
    time.sleep(GRACE_S * 2)
    relay.stop()
    assert missed == []  # before: the child's byte reached this relay, which ended this process


def test_a_signal_the_handler_runs_for_is_left_alone(free_wakeup_fd):
    handled, missed = [], []
    relay = SignalRelay([SIGNUM], lambda signum: missed.append(signum) or True)

    def handler(signum, frame):
        relay.acknowledge(signum)
        handled.append(signum)

    signal.signal(SIGNUM, handler)
    relay.start()
    os.kill(os.getpid(), SIGNUM)
    wait_until(lambda: handled)
    time.sleep(GRACE_S * 2)
    assert missed == [] and handled == [SIGNUM]
    relay.stop()


def test_a_taken_wakeup_fd_is_left_to_its_owner(free_wakeup_fd):
    import socket

    reader, writer = socket.socketpair()
    writer.setblocking(False)
    signal.set_wakeup_fd(writer.fileno())
    try:
        relay = SignalRelay([SIGNUM], lambda signum: True).start()
        assert not relay.active
        assert signal.set_wakeup_fd(writer.fileno()) == writer.fileno()
        relay.stop()  # a no-op
    finally:
        signal.set_wakeup_fd(-1)
        reader.close()
        writer.close()
