"""LinkamT95: a plain-Python driver for the Linkam T95/T94/CI94 controller (no ophyd)."""

from __future__ import annotations

import threading
import time
from types import TracebackType
from typing import Literal

from insitu.devices.linkam._errors import (
    LinkamConnectionError,
    LinkamInterlockError,
    LinkamProtocolError,
    LinkamStageError,
    LinkamTimeout,
)
from insitu.devices.linkam._limits import StageLimits, check_limit, check_rate, limits_for
from insitu.devices.linkam._protocol import (
    LinkamReading,
    decode_status_reply,
    encode_limit,
    encode_pump_speed,
    encode_rate,
)
from insitu.devices.transport import (
    Transport,
    TransportConnectionError,
    TransportError,
    TransportTimeout,
    open_transport,
)

__all__ = ["LinkamT95"]

_PUMP_SPEEDS = range(0, 31)


class LinkamT95:
    """Speak the Linkam T95 serial protocol over a transport.

    Every public method is thread-safe: one lock serialises whole exchanges (command, reply),
    and consecutive commands are spaced by ``min_command_interval`` wall seconds. Every value is
    checked against the stage limits before anything is sent.

    Parameters
    ----------
    address : str or Transport
        A VISA resource string (``ASRL/dev/ttyUSB0::INSTR``, ``TCPIP::host::port::SOCKET``),
        opened and owned by the driver (reopened after a timeout or a dropped connection), or an
        already-open transport such as ``ScriptedTransport`` (used as is, never closed here).
    stage_model : str, optional
        ``"TS1500"`` (20 to 1500 C) or ``"HFS600E"`` (-196 to 600 C); both 0.01-150 C/min.
    limits : StageLimits, optional
        Ranges that replace the stage model's.
    min_command_interval : float, optional
        Wall seconds between the end of one exchange and the next command (the controller wants
        ~0.3 s; an emulator needs none).
    timeout : float, optional
        Wall seconds to wait for each reply line.
    name : str, optional
        Device name used in error messages (``"linkam.setpoint 2000.0 C is above ..."``).

    Raises
    ------
    LinkamConnectionError
        If the address cannot be opened.
    LinkamTimeout, LinkamProtocolError
        If the first ``T`` (sent at once: the controller ignores everything before it) gets no
        valid reply.
    """

    def __init__(
        self,
        address: str | Transport,
        *,
        stage_model: str = "TS1500",
        limits: StageLimits | None = None,
        min_command_interval: float = 0.3,
        timeout: float = 1.0,
        name: str = "linkam",
    ) -> None:
        if not (min_command_interval >= 0):
            raise ValueError(
                f"{name}.min_command_interval {min_command_interval!r} s must be zero or more"
            )
        if not (timeout > 0):
            raise ValueError(f"{name}.timeout {timeout!r} s must be positive")
        self.name = name
        self.limits = limits if limits is not None else limits_for(stage_model)
        self.min_command_interval = float(min_command_interval)
        self.timeout = float(timeout)
        self._lock = threading.RLock()
        self._closing = threading.Event()
        self._last_exchange_end = float("-inf")
        self._closed = False
        self._interlock: str | None = None
        self._interlock_allows_hold = False
        if isinstance(address, str):
            self._address = address
            self._owns_transport = True
            self._transport: Transport | None = None
        else:
            if not isinstance(address, Transport):
                raise TypeError(
                    f"{name}: address {address!r} is neither a VISA resource string nor a "
                    "transport (write, read_line, discard_input, close)"
                )
            self._address = getattr(address, "address", repr(address))
            self._owns_transport = False
            self._transport = address
        # What to do before the next exchange after a failure: nothing, flush stale input, or
        # reopen the transport (which also repeats the T-first handshake).
        self._recovery: Literal["none", "flush", "reconnect"] = (
            "reconnect" if self._owns_transport else "flush"
        )
        try:
            self.connect()
        except BaseException:
            self.close()
            raise

    def __repr__(self) -> str:
        return f"LinkamT95({self._address!r}, stage_model={self.stage_model!r})"

    def __enter__(self) -> LinkamT95:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def address(self) -> str:
        """The address (or transport description) the driver talks to."""
        return self._address

    @property
    def stage_model(self) -> str:
        """The stage model whose limits are enforced."""
        return self.limits.model

    # -- connection ---------------------------------------------------------------------------

    def connect(self) -> LinkamReading:
        """(Re)open the transport if the driver owns it, flush stale input and send ``T``.

        Returns
        -------
        LinkamReading
            The reply to the first ``T`` (error flags are not raised here).
        """
        with self._lock:
            self._check_not_closed()
            if self._owns_transport:
                self._reopen_transport()
            else:
                self._flush_input()
            self._recovery = "none"
            reading = self._read_status()
            return reading

    def close(self) -> None:
        """Close the transport if the driver opened it; later calls raise LinkamConnectionError."""
        self._closing.set()
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._owns_transport and self._transport is not None:
                transport, self._transport = self._transport, None
                transport.close()

    # -- reading ------------------------------------------------------------------------------

    def status(self, *, check_errors: bool = True) -> LinkamReading:
        """Send ``T`` and decode the reply.

        Parameters
        ----------
        check_errors : bool, optional
            Raise LinkamStageError if the controller reports an error flag (default). Pass
            False to get the reading with its flags instead.

        Returns
        -------
        LinkamReading

        Raises
        ------
        LinkamTimeout, LinkamConnectionError, LinkamProtocolError, LinkamStageError
        """
        with self._lock:
            self._recover()
            reading = self._read_status()
        if check_errors and reading.errors:
            raise LinkamStageError.from_reading(reading, f"{self.name} at {self._address}")
        return reading

    # -- settings -----------------------------------------------------------------------------

    def check_rate(self, c_per_min: float) -> float:
        """Return the rate as a float if the stage accepts it; raise ValueError/TypeError if not."""
        return check_rate(c_per_min, self.limits, self.name)

    def check_limit(self, celsius: float) -> float:
        """Return the setpoint as a float if the stage accepts it; raise ValueError/TypeError."""
        return check_limit(celsius, self.limits, self.name)

    def set_rate(self, c_per_min: float) -> None:
        """Set the ramp rate in degC/min (``R1`` + rate x 100), 0.01 C/min resolution."""
        self._set_command(encode_rate(self.check_rate(c_per_min)))

    def set_limit(self, celsius: float) -> None:
        """Set the limit (target temperature) in degC (``L1`` + limit x 10), 0.1 C resolution."""
        self._set_command(encode_limit(self.check_limit(celsius)))

    def set_pump(self, mode: Literal["auto"] | int) -> None:
        """Put the liquid-nitrogen pump in automatic mode or at a manual speed.

        Parameters
        ----------
        mode : "auto" or int
            ``"auto"`` sends ``Pa0``; a speed 0-30 sends ``Pm0`` then ``P`` + chr(48 + speed).
        """
        if mode == "auto":
            self._set_command(b"Pa0")
            return
        if isinstance(mode, bool) or not isinstance(mode, int):
            raise TypeError(f"{self.name}.pump {mode!r} is neither 'auto' nor a speed 0 to 30")
        if mode not in _PUMP_SPEEDS:
            raise ValueError(f"{self.name}.pump speed {mode} is outside 0 to 30")
        with self._lock:
            self._set_command(b"Pm0")
            self._set_command(encode_pump_speed(mode))

    # -- actions ------------------------------------------------------------------------------

    def start(self) -> None:
        """Start ramping toward the limit at the rate (``S``); refused while interlocked."""
        self._set_command(b"S", heats=True)

    def stop(self) -> None:
        """Stop: heater off (``E``). Always allowed, also while interlocked."""
        self._set_command(b"E")

    def hold(self) -> None:
        """Hold the current temperature (``O``); refused while interlocked to 'heater off'."""
        self._set_command(b"O", heats=True)

    def heat(self) -> None:
        """Force heating; also releases a hold (``H``); refused while interlocked."""
        self._set_command(b"H", heats=True)

    def cool(self) -> None:
        """Force cooling; also releases a hold (``C``); refused while interlocked."""
        self._set_command(b"C", heats=True)

    # -- safety interlock ---------------------------------------------------------------------

    @property
    def interlock(self) -> str | None:
        """Why the interlock is engaged, or None when it is not."""
        return self._interlock

    def engage_interlock(self, reason: str, *, allow_hold: bool = False) -> None:
        """Refuse every command that could make the controller heat until released.

        While engaged, ``start``, ``heat`` and ``cool`` (and ``hold`` unless ``allow_hold``)
        raise LinkamInterlockError before anything is sent; ``stop`` (heater off), ``status``,
        rate and limit settings still work. Engaging it sends nothing by itself.

        Parameters
        ----------
        reason : str
            Shown in every refusal (e.g. the safety alarm that engaged it).
        allow_hold : bool, optional
            Let ``hold`` (``O``, regulate at the current temperature) through: the safe state
            of a watchdog configured to hold.
        """
        with self._lock:
            self._interlock = str(reason)
            self._interlock_allows_hold = bool(allow_hold)

    def release_interlock(self) -> None:
        """Allow heating commands again (a person acknowledged the alarm)."""
        with self._lock:
            self._interlock = None
            self._interlock_allows_hold = False

    def check_interlock(self, action: str) -> None:
        """Raise LinkamInterlockError naming ``action`` if the interlock is engaged."""
        reason = self._interlock
        if reason is not None:
            raise LinkamInterlockError(
                f"{self.name}: refusing to {action}: the safety interlock is engaged ({reason}); "
                "clear the cause, then acknowledge the alarm (beamline.watchdog.reset())"
            )

    # -- exchanges ----------------------------------------------------------------------------

    def _set_command(self, command: bytes, *, heats: bool = False) -> None:
        """Send a set command and read and discard its reply line (usually empty).

        ``heats``: the command can make the controller heat; refused while interlocked (checked
        under the lock, so an interlock engaged by another thread is never raced past).
        """
        with self._lock:
            if heats and not (command == b"O" and self._interlock_allows_hold):
                self.check_interlock(f"send {command.decode()!r}")
            self._recover()
            self._exchange(command)

    def _read_status(self) -> LinkamReading:
        raw = self._exchange(b"T")
        try:
            return decode_status_reply(raw)
        except LinkamProtocolError as exc:
            # A bad line may be half of something: drop whatever else is in flight.
            self._recovery = "flush"
            raise LinkamProtocolError(f"{self.name} at {self._address}: {exc}", exc.raw) from None

    def _exchange(self, command: bytes) -> bytes:
        """Write one command and return its reply line. Caller holds the lock."""
        self._check_not_closed()
        transport = self._transport
        if transport is None:
            raise LinkamConnectionError(f"{self.name} at {self._address}: not connected")
        self._wait_command_interval()
        try:
            transport.write(command)
            return transport.read_line()
        except TransportTimeout as exc:
            self._note_link_failure()
            raise LinkamTimeout(
                f"{self.name} at {self._address}: no reply to {command!r} within {self.timeout:g} s"
            ) from exc
        except TransportConnectionError as exc:
            self._note_link_failure()
            raise LinkamConnectionError(
                f"{self.name} at {self._address}: connection lost during {command!r}: {exc}"
            ) from exc
        finally:
            self._last_exchange_end = time.monotonic()

    def _note_link_failure(self) -> None:
        # A late reply may still arrive, or the link may be gone: start afresh next time.
        self._recovery = "reconnect" if self._owns_transport else "flush"

    def _recover(self) -> None:
        if self._recovery == "reconnect":
            self.connect()
        elif self._recovery == "flush":
            self._flush_input()
            self._recovery = "none"

    def _reopen_transport(self) -> None:
        if self._transport is not None:
            old, self._transport = self._transport, None
            try:
                old.close()
            except TransportError:
                pass  # the old link is being replaced because it failed; its state is moot
        try:
            self._transport = open_transport(self._address, timeout=self.timeout)
        except TransportError as exc:
            self._recovery = "reconnect"
            raise LinkamConnectionError(f"{self.name}: {exc}") from exc

    def _flush_input(self) -> None:
        transport = self._transport
        if transport is None:
            return
        try:
            transport.discard_input()
        except TransportConnectionError as exc:
            self._note_link_failure()
            raise LinkamConnectionError(f"{self.name} at {self._address}: {exc}") from exc

    def _wait_command_interval(self) -> None:
        remaining = self._last_exchange_end + self.min_command_interval - time.monotonic()
        if remaining > 0:
            # Wall time on purpose: controller pacing, not experiment time. Close() cuts it short.
            self._closing.wait(remaining)

    def _check_not_closed(self) -> None:
        if self._closed:
            raise LinkamConnectionError(f"{self.name} at {self._address}: the driver is closed")
