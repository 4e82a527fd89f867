"""LinkamT95Emulator: the far end of the wire for a Linkam T95, byte for byte, on a pty or TCP.

The controller state is computed analytically from ``insitu.clock`` at each request (see
``linkam_thermal``), so any clock speed-up gives the same physics. The segment history is kept:
``temperature_at(t)`` is the true stage temperature at any experiment time since creation, which
is what a virtual sample integrates its kinetics over.
"""

from __future__ import annotations

import random
import re
import threading
from collections import deque
from types import TracebackType

from insitu import clock
from insitu.sim.line_server import PtyLineServer, TcpLineServer
from insitu.sim.linkam_thermal import (
    STAGE_MODELS,
    HeaterOff,
    Holding,
    Ramping,
    RegulationNoise,
    StageModel,
    ThermalHistory,
)

__all__ = ["FAULT_KINDS", "LinkamT95Emulator"]

FAULT_KINDS = ("no_reply", "garbage", "truncated", "unplugged", "disconnect", "overshoot")

_OPEN_CIRCUIT = 0x02
_PUMP_FULL_SPEED = 30
_SET_REPLY = b"\r"
_SIGNED_DECIMAL = re.compile(rb"-?[0-9]+")


class LinkamT95Emulator:
    """Emulate a Linkam T95 controller with a stage, for drivers on a pty or loopback TCP.

    Parameters
    ----------
    stage_model : str, optional
        ``"TS1500"`` (limits 0-1500 C accepted; cannot go below ambient) or ``"HFS600E"``
        (-196-600 C; below ambient only with the liquid-nitrogen pump). Both 0.01-150 C/min.
    ambient : float, optional
        Room temperature in degC; the stage starts there, heater off.
    seed : int, optional
        Seed for the regulation noise and for faulty replies (reproducible runs).
    noise : float, optional
        Amplitude of the regulation ripple at a setpoint, degC.

    Notes
    -----
    Protocol behaviour: nothing is answered before the first ``T``; set commands answer a bare
    CR; out-of-range ``R1``/``L1`` values are ignored as the firmware does; unknown commands get
    no reply. ``S``, ``H`` and ``C`` all (re)start the ramp from the current temperature toward
    the limit; ``R1``/``L1``/pump changes during a ramp take effect at once. Status 0x40
    (holding the limit for a programmed time) is never produced: profiles are not emulated.
    """

    def __init__(
        self,
        stage_model: str = "TS1500",
        ambient: float = 25.0,
        seed: int | None = None,
        *,
        noise: float = 0.1,
    ) -> None:
        try:
            self._model: StageModel = STAGE_MODELS[stage_model]
        except KeyError:
            known = ", ".join(sorted(STAGE_MODELS))
            raise ValueError(
                f"unknown Linkam stage model {stage_model!r}; known: {known}"
            ) from None
        self.ambient = float(ambient)
        self._lock = threading.RLock()
        self._rng = random.Random(seed)
        now = clock.now()
        self.created_at = now
        self._seed, self._noise = seed, noise
        self._history = self._at_rest(now)
        self._limit = self.ambient
        self._rate = 10.0
        self._pump_auto = False
        self._pump_speed = 0
        self._seen_t = False
        self._fault: str | None = None
        self._overshoot = 0.0
        self._frozen_temperature: float | None = None
        self._servers: list[PtyLineServer | TcpLineServer] = []
        self.received_commands: deque[bytes] = deque(maxlen=10_000)
        """Every line received, in order (including ignored ones), newest last."""
        self.exchanges: deque[tuple[float, bytes, bytes | None]] = deque(maxlen=100_000)
        """Every exchange as (experiment time, command, reply or None), newest last."""

    def __enter__(self) -> LinkamT95Emulator:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- serving ------------------------------------------------------------------------------

    def serve_pty(self) -> str:
        """Serve on a new pseudo-terminal in a background thread.

        Returns
        -------
        str
            The device path, e.g. ``/dev/pts/5``; VISA address ``ASRL/dev/pts/5::INSTR``.
        """
        server = PtyLineServer(self.respond)
        path = server.start()
        self._add_server(server)
        return path

    def serve_tcp(self, port: int = 0) -> int:
        """Serve on 127.0.0.1 in a background thread, one client at a time.

        Returns
        -------
        int
            The port; VISA address ``TCPIP::127.0.0.1::<port>::SOCKET``.
        """
        server = TcpLineServer(self.respond)
        bound = server.start(port)
        self._add_server(server)
        return bound

    def close(self) -> None:
        """Stop every server thread and close its pty or sockets. Closing twice is harmless."""
        with self._lock:
            servers, self._servers = self._servers, []
        for server in servers:
            server.close()

    def _add_server(self, server: PtyLineServer | TcpLineServer) -> None:
        with self._lock:
            server.set_disconnected(self._fault == "disconnect")
            self._servers.append(server)

    def _at_rest(self, now: float) -> ThermalHistory:
        """A history that starts at ``now``: heater off at ambient, the ripple from there."""
        return ThermalHistory(
            HeaterOff(now, self.ambient, self.ambient, self._model.passive_lag),
            RegulationNoise(self._seed, amplitude=self._noise, origin=now),
        )

    def new_sample(self) -> None:
        """A fresh film goes on the stage: the stage is at rest at ambient from now.

        A campaign's sample change (``SimulatedLab.load_new_film``): opening the stage to
        change the film leaves it at room temperature with the heater off, and its history (and
        regulation ripple) restart here, so a sample's anneal is the same whatever the stage
        did before it (an uninterrupted campaign, or one resumed in a new process).
        """
        with self._lock:
            self._history = self._at_rest(clock.now())
            self._limit = self.ambient
            self._overshoot = 0.0
            self._frozen_temperature = None

    # -- physics, for the virtual sample and for tests --------------------------------------

    @property
    def stage_model(self) -> str:
        """The emulated stage model's name."""
        return self._model.name

    def temperature(self) -> float:
        """True stage temperature now (degC), not rounded, not frozen by faults."""
        return self.temperature_at(clock.now())

    def temperature_at(self, t: float) -> float:
        """True stage temperature (degC) at experiment time ``t`` since creation.

        For a time after the latest command this is the prediction of the current segment,
        which a later command may change.

        Raises
        ------
        ValueError
            If ``t`` is before the emulator was created.
        """
        with self._lock:
            return self._history.temperature(t)

    @property
    def limit(self) -> float:
        """The controller's limit (degC), as last accepted from L1."""
        return self._limit

    @property
    def rate(self) -> float:
        """The controller's ramp rate (degC/min), as last accepted from R1."""
        return self._rate

    @property
    def pump(self) -> str | int:
        """``"auto"`` or the manual pump speed 0-30."""
        return "auto" if self._pump_auto else self._pump_speed

    def status_byte(self) -> int:
        """SB1 the controller would report now."""
        with self._lock:
            now = clock.now()
            return self._history.segment_at(now).status(now)

    # -- faults -----------------------------------------------------------------------------

    @property
    def fault(self) -> str | None:
        """The injected fault, or None."""
        return self._fault

    def inject_fault(self, kind: str, *, degrees: float = 5.0) -> None:
        """Make the controller misbehave until ``clear_fault()``; replaces any current fault.

        Parameters
        ----------
        kind : str
            ``"no_reply"``: silent, commands not executed. ``"garbage"``: commands executed,
            replies are random non-protocol bytes. ``"truncated"``: status replies cut short
            (still CR-terminated). ``"unplugged"``: the stage is disconnected: EB1 0x02, the
            reported temperature frozen, the heater off, set commands answered but without
            effect. ``"disconnect"``: the cable is pulled: a pty goes silent, TCP drops the
            connection and refuses new ones. ``"overshoot"``: ramps started from now on
            overshoot the limit by ``degrees`` before settling (protocol unaffected).
        degrees : float, optional
            Overshoot height in degC (``"overshoot"`` only).
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; known: {', '.join(FAULT_KINDS)}")
        with self._lock:
            self.clear_fault()
            now = clock.now()
            self._fault = kind
            if kind == "overshoot":
                self._overshoot = float(degrees)
            elif kind == "unplugged":
                self._frozen_temperature = self._history.temperature(now)
                self._history.append(self._heater_off(now))
            elif kind == "disconnect":
                for server in self._servers:
                    server.set_disconnected(True)

    def clear_fault(self) -> None:
        """End the injected fault; an unplugged stage comes back stopped (heater off)."""
        with self._lock:
            for server in self._servers:
                server.set_disconnected(False)
            self._fault = None
            self._overshoot = 0.0
            self._frozen_temperature = None

    # -- protocol ---------------------------------------------------------------------------

    def respond(self, line: bytes) -> bytes | None:
        """Handle one command line (terminator removed); return the reply bytes or None.

        This is what the pty and TCP servers call; tests may call it directly.
        """
        command = line.strip(b"\n")
        with self._lock:
            self.received_commands.append(command)
            reply = self._reply_to(command)
            self.exchanges.append((clock.now(), command, reply))
            return reply

    def _reply_to(self, command: bytes) -> bytes | None:
        with self._lock:
            fault = self._fault
            if fault in ("no_reply", "disconnect"):
                return None
            if not self._seen_t:
                if command != b"T":
                    return None
                self._seen_t = True
            now = clock.now()
            if command == b"T":
                reply = self._status_reply(now)
            elif fault == "unplugged":
                reply = _SET_REPLY if self._is_known(command) else None
            else:
                reply = self._execute(command, now)
            if reply is None:
                return None
            if fault == "garbage":
                return self._garbage()
            if fault == "truncated" and len(reply) > 1:
                return reply[: self._rng.randint(1, len(reply) - 2)] + b"\r"
            return reply

    def _status_reply(self, now: float) -> bytes:
        segment = self._history.segment_at(now)
        errors = segment.errors(now)
        if self._fault == "unplugged" and self._frozen_temperature is not None:
            temperature = self._frozen_temperature
            errors |= _OPEN_CIRCUIT
        else:
            temperature = self._history.temperature(now)
        tenths = round(temperature * 10) & 0xFFFF
        head = bytes(
            [
                segment.status(now),
                0x80 | errors,
                0x80 + self._reported_pump_speed(now),
                0x80,
                0x80,
                0x80,
            ]
        )
        return head + b"%04X" % tenths + b"\r"

    def _reported_pump_speed(self, now: float) -> int:
        if not self._pump_auto:
            return self._pump_speed
        running = isinstance(self._history.segment_at(now), (Ramping, Holding))
        return _PUMP_FULL_SPEED if running and self._limit < self.ambient else 0

    def _is_known(self, command: bytes) -> bool:
        return command in (b"S", b"E", b"O", b"H", b"C", b"Pa0", b"Pm0") or (
            command[:2] in (b"R1", b"L1") or (len(command) == 2 and command[:1] == b"P")
        )

    def _execute(self, command: bytes, now: float) -> bytes | None:
        if command in (b"S", b"H", b"C"):
            theta = self._history.smooth_temperature(now)
            self._history.append(self._ramp(now, theta, program0=theta))
        elif command == b"E":
            self._history.append(self._heater_off(now))
        elif command == b"O":
            self._history.append(Holding(now, self._history.smooth_temperature(now)))
        elif command[:2] == b"R1":
            value = _signed_int(command[2:])
            if value is not None and self._model.min_rate <= value / 100 <= self._model.max_rate:
                self._rate = value / 100
                self._replan(now)
        elif command[:2] == b"L1":
            value = _signed_int(command[2:])
            if value is not None and self._model.min_limit <= value / 10 <= self._model.max_limit:
                self._limit = value / 10
                self._replan(now)
        elif command == b"Pa0":
            self._pump_auto = True
            self._replan(now)
        elif command == b"Pm0":
            self._pump_auto = False
            self._replan(now)
        elif len(command) == 2 and command[:1] == b"P" and 0 <= command[1] - 48 <= _PUMP_FULL_SPEED:
            self._pump_speed = command[1] - 48
            self._replan(now)
        else:
            return None
        return _SET_REPLY

    def _replan(self, now: float) -> None:
        """A setting changed mid-ramp: carry on from the current temperature and program."""
        current = self._history.current
        if isinstance(current, Ramping):
            program = current.program(now)
            theta = self._history.smooth_temperature(now)
            self._history.append(
                self._ramp(now, theta, program0=program if program is not None else theta)
            )

    def _ramp(self, now: float, theta: float, *, program0: float) -> Ramping:
        model = self._model
        pump_fraction = 1.0 if self._pump_auto else self._pump_speed / _PUMP_FULL_SPEED
        pump_on = model.pump_cooling and pump_fraction > 0
        return Ramping(
            t0=now,
            theta0=theta,
            program0=program0,
            limit=self._limit,
            rate=self._rate,
            floor=model.min_limit if pump_on else self.ambient,
            max_cooling_rate=model.max_cooling_rate
            + (model.max_cooling_rate_pump - model.max_cooling_rate)
            * (pump_fraction if pump_on else 0.0),
            heating_lag=model.heating_lag,
            cooling_lag=model.cooling_lag,
            overshoot=self._overshoot,
        )

    def _heater_off(self, now: float) -> HeaterOff:
        return HeaterOff(
            now, self._history.smooth_temperature(now), self.ambient, self._model.passive_lag
        )

    def _garbage(self) -> bytes:
        # Never a valid reply: the first byte is no status value and no CR appears inside.
        length = self._rng.randint(3, 16)
        body = bytes(self._rng.choice(b"\x00\x07?#~\xff\xfeZzq!%&") for _ in range(length))
        return body + b"\r"


def _signed_int(text: bytes) -> int | None:
    return int(text) if _SIGNED_DECIMAL.fullmatch(text) else None
