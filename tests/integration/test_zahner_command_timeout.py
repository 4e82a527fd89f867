"""A Remote2 command whose reply never comes (Term's link died with the command in flight; the
library waits without a timeout) ends as a connection error instead of hanging the sweep."""

from __future__ import annotations

import threading
import time

import pytest

from insitu.devices.zahner import ZahnerConnectionError
from insitu.devices.zahner._session import ThalesSession
from insitu.sim.film_impedance import FILM_750C, FilmImpedance
from insitu.sim.thales_term import TermEmulator


@pytest.mark.allow_slow("the library spends 1.6 s connecting each channel")
def test_a_command_without_a_reply_severs_the_session_and_raises():
    term = TermEmulator(FilmImpedance(FILM_750C), seed=1)
    port = term.serve_tcp(port=0)
    session = ThalesSession("127.0.0.1", port, owner="eis")
    try:
        session.open()
        session.command_timeout_s = 0.3
        never = threading.Event()
        started = time.monotonic()
        with pytest.raises(
            ZahnerConnectionError,
            match=r"^eis: Term at 127\.0\.0\.1:\d+ did not answer Fmax=1e\+06 within 0\.3 s$",
        ):
            session.command("Fmax=1e+06", never.wait)  # a reply that never comes
        assert time.monotonic() - started < 5
        with pytest.raises(ZahnerConnectionError, match="no connection to Term"):
            session.command("Fmin=1", lambda: "OK")  # broken: the device reconnects
        never.set()
    finally:
        session.close()
        term.close()
