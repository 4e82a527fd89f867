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


def test_a_signal_the_main_thread_cannot_take_is_acted_on_and_resent(free_wakeup_fd):
    handled, missed = [], []
    relay = None

    def handler(signum, frame):
        relay.acknowledge(signum)
        handled.append(signum)

    signal.signal(SIGNUM, handler)
    relay = SignalRelay([SIGNUM], missed.append).start()
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
        assert missed == [SIGNUM]  # the relay acted while the main thread was blind
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)
        send.join()
        release.join()
    wait_until(lambda: handled)  # the main thread's handler runs once it can
    time.sleep(GRACE_S * 2)  # the resend's own wakeup byte is not acted on again
    assert missed == [SIGNUM]
    relay.stop()
    assert signal.set_wakeup_fd(-1) == -1  # the fd given back


def test_a_signal_the_handler_runs_for_is_left_alone(free_wakeup_fd):
    handled, missed = [], []
    relay = SignalRelay([SIGNUM], missed.append)

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
        relay = SignalRelay([SIGNUM], lambda signum: None).start()
        assert not relay.active
        assert signal.set_wakeup_fd(writer.fileno()) == writer.fileno()
        relay.stop()  # a no-op
    finally:
        signal.set_wakeup_fd(-1)
        reader.close()
        writer.close()
