"""Horiba LabSpec 6 over its TCP remote protocol: a byte stream, the protocol client, the backend.

Protocol facts (``reference/labspec6.md``; the only public implementation is PyMoDAQ's
``Labspec6Client``): LabSpec is the TCP server (default port 1234) and greets first with
``<tok> OK <id text>\\r\\n``. The client sends ``"<id> <Command>[ <arg>...]"`` in one send with no
terminator; ``<id>`` starts at 0 and goes up by one per command; each reply is one ``\\r\\n`` line
whose first token echoes the id. Replies are ``<id> OK[ text]``, arrays ``<id> OK <N> v1 .. vN``,
or get-param ``<id> <number>[ choice#choice#..]`` (no OK). Anything else is an error.

Written on plain sockets (:mod:`._socket_stream`): the project's transport module (pyvisa TCPIP
SOCKET) was not there when this was written, and the protocol needs a per-reply timeout (5 x the
acquisition time); the stream is the only piece that would change.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from insitu import clock
from insitu.checks import as_finite, as_positive
from insitu.devices.raman._axis import check_laser_wavelength, raman_shift_cm1
from insitu.devices.raman._socket_stream import ByteStream, SocketStream, parse_socket_address

__all__ = [
    "LabSpec6Error",
    "LabSpec6LinkError",
    "LabSpec6Client",
    "LabSpec6Backend",
    "DEFAULT_PORT",
]

DEFAULT_PORT = 1234
DEFAULT_TIMEOUT_S = 20.0
ACQUISITION_TIMEOUT_FACTOR = 5.0  # the client waits 5 x AcquisitionTime, as PyMoDAQ does
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


class LabSpec6Error(IOError):
    """LabSpec 6 replied with an error, an unexpected id, or something that is not the protocol."""


class LabSpec6LinkError(LabSpec6Error):
    """The byte stream is out of step (a reply that is not text, or carries another id).

    Nothing more on this connection can be trusted; reconnecting puts it right.
    """


def _format_argument(value: Any) -> str:
    """Arguments go out as Python ``str()`` values (``1.5``, ``600``), as the reference client."""
    if isinstance(value, bool):
        raise TypeError(f"labspec6 argument {value!r} must be a number or text, not a bool")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"labspec6 argument {value!r} is not a finite number")
    text = str(value)
    if not text or any(c.isspace() for c in text):
        raise ValueError(f"labspec6 argument {text!r} must be one word")
    return text


class LabSpec6Client:
    """The LabSpec 6 remote protocol over a :class:`ByteStream`.

    Parameters
    ----------
    stream : ByteStream
        A connected stream; the server's greeting is read at once.
    timeout_s : float
        Default wall-time limit for a reply.

    Attributes
    ----------
    controller_id : str
        The text of the server's greeting after ``OK``.
    address : tuple of (str, int) or None
        ``(host, port)`` when opened by :meth:`connect` (what a reconnect needs).
    """

    def __init__(self, stream: ByteStream, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.timeout_s = as_positive(timeout_s, "labspec6 timeout", unit="s")
        self._stream = stream
        self.address: tuple[str, int] | None = None
        self._next_id = 0
        self._lock = threading.Lock()
        greeting = self._decode(stream.read_line(self.timeout_s))
        tokens = greeting.split(" ")
        if len(tokens) < 2 or tokens[1] != "OK":
            raise LabSpec6Error(f"labspec6 greeting {greeting!r} is not '<tok> OK <id>'")
        self.controller_id = " ".join(tokens[2:])

    @classmethod
    def connect(
        cls, host: str = "localhost", port: int = DEFAULT_PORT, *, timeout_s: float = 20.0
    ) -> LabSpec6Client:
        """Open a TCP connection to LabSpec's remote server and read its greeting."""
        stream = SocketStream(host, port, connect_timeout_s=min(timeout_s, 10.0))
        try:
            client = cls(stream, timeout_s=timeout_s)
        except BaseException:
            stream.close()
            raise
        client.address = (host, int(port))
        return client

    # --- framing --------------------------------------------------------------------------
    @staticmethod
    def _decode(line: bytes) -> str:
        try:
            return line.decode("ascii")
        except UnicodeDecodeError:
            raise LabSpec6LinkError(f"labspec6 reply {line[:80]!r} is not ASCII text") from None

    def command(self, command: str, *args: Any, timeout_s: float | None = None) -> list[str]:
        """Send one command and return the reply's tokens after the echoed id.

        Raises
        ------
        LabSpec6Error
            If the reply's id is not the command's.
        TimeoutError, ConnectionError
            From the stream.
        """
        with self._lock:
            message_id = self._next_id
            self._next_id += 1
            text = " ".join([str(message_id), command, *(_format_argument(a) for a in args)])
            self._stream.send(text.encode("ascii"))
            return self._reply(message_id, text, timeout_s)

    def _reply(self, message_id: int, sent: str, timeout_s: float | None) -> list[str]:
        line = self._decode(self._stream.read_line(timeout_s or self.timeout_s))
        tokens = line.split(" ")
        if tokens[0] != str(message_id):
            raise LabSpec6LinkError(
                f"labspec6 reply {line[:120]!r} to {sent!r} does not carry the id {message_id}"
            )
        return tokens[1:]

    @staticmethod
    def _require_ok(tokens: list[str], sent: str) -> list[str]:
        if not tokens or tokens[0] != "OK":
            raise LabSpec6Error(f"labspec6 {sent!r} failed: {' '.join(tokens)[:200]!r}")
        return tokens[1:]

    @classmethod
    def _parse_array(cls, tokens: list[str], sent: str) -> np.ndarray:
        rest = cls._require_ok(tokens, sent)
        try:
            count = int(rest[0])
            values = np.array([float(v) for v in rest[1:]], dtype=float)
        except (IndexError, ValueError):
            raise LabSpec6Error(
                f"labspec6 reply to {sent!r} is not '<id> OK <N> v1 .. vN'"
            ) from None
        if values.size != count:
            raise LabSpec6Error(
                f"labspec6 reply to {sent!r} announces {count} values but carries {values.size}"
            )
        return values

    # --- commands -------------------------------------------------------------------------
    def get_param(self, name: str) -> tuple[float, list[str]]:
        """``GetRamanParam <name>``: the value and, for indexed settings, the list of choices.

        Raises
        ------
        LabSpec6Error
            On ``Unknown`` or any reply that is not a number.
        """
        tokens = self.command("GetRamanParam", name)
        if not tokens or not _NUMBER.match(tokens[0]):
            raise LabSpec6Error(f"labspec6 GetRamanParam {name} failed: {' '.join(tokens)[:200]!r}")
        choices = [c for c in " ".join(tokens[1:]).split("#") if c]
        return float(tokens[0]), choices

    def set_param(self, name: str, value: Any) -> None:
        """``SetRamanParameter <name> <value>`` (note: Set*Parameter*, Get*Param*)."""
        self._require_ok(self.command("SetRamanParameter", name, value), f"set {name}")

    def acquisition_time_s(self) -> float:
        """``AcquisitionTime``: LabSpec's approximate total acquisition time (s)."""
        return self.get_param("AcquisitionTime")[0]

    def set_point_list(self, points: Sequence[tuple[float, float]]) -> None:
        """``SetPointList <N> <Nbytes>`` then each point as a raw ``"x y"`` chunk.

        Raises
        ------
        LabSpec6Error
            If the server does not answer ``Ready to receive``, ``OK Point`` after each point
            but the last, and a final ``<id> OK``.
        """
        texts = [f"{_format_argument(x)} {_format_argument(y)}" for x, y in points]
        if not texts:
            raise ValueError("labspec6 SetPointList needs at least one point")
        n_bytes = sum(len(t.encode("ascii")) for t in texts)
        with self._lock:
            message_id = self._next_id
            self._next_id += 1
            sent = f"{message_id} SetPointList {len(texts)} {n_bytes}"
            self._stream.send(sent.encode("ascii"))
            first = self._reply(message_id, sent, None)
            if "OK Ready to receive" not in " ".join(first):
                raise LabSpec6Error(f"labspec6 {sent!r} was not accepted: {' '.join(first)!r}")
            for index, text in enumerate(texts):
                self._stream.send(text.encode("ascii"))
                if index < len(texts) - 1:
                    line = self._decode(self._stream.read_line(self.timeout_s))
                    if "OK Point" not in line:
                        raise LabSpec6Error(
                            f"labspec6 point {index} {text!r} was not accepted: {line!r}"
                        )
                else:
                    self._require_ok(self._reply(message_id, sent, None), sent)

    def spectral_axis(self) -> np.ndarray:
        """``EnableSpectralResponse``: the x axis, one value per pixel (nm as LabSpec sends it)."""
        return self._parse_array(self.command("EnableSpectralResponse"), "EnableSpectralResponse")

    def set_active_point(self, index: int) -> None:
        """``SetActivePoint <index>``."""
        self._require_ok(self.command("SetActivePoint", int(index)), "SetActivePoint")

    def start_measurement(self, index: int, *, timeout_s: float) -> np.ndarray:
        """``StartRamanMeasurement <index>``: blocks until the spectrum's intensities arrive."""
        sent = "StartRamanMeasurement"
        return self._parse_array(self.command(sent, int(index), timeout_s=timeout_s), sent)

    def logout(self) -> None:
        """``Logout``, then close the stream (also when the logout fails)."""
        try:
            self._require_ok(self.command("Logout"), "Logout")
        finally:
            self._stream.close()

    def close(self) -> None:
        """Close the stream without logging out."""
        self._stream.close()


class LabSpec6Backend:
    """Raman backend for Horiba LabSpec 6 over its TCP remote protocol.

    Parameters
    ----------
    client : LabSpec6Client
        A connected protocol client.
    laser_wavelength_nm : float
        Excitation wavelength used to convert LabSpec's nm axis to Raman shift. Checked against
        LabSpec's ``LaserWavelength`` before the first acquisition.
    full_laser_power_mW : float
        Laser power at the sample with no attenuation (mW).
    laser_power_control : {"filter", "none"}
        ``"filter"``: set the power through LabSpec's ``Filter`` (ND filter) index, choosing the
        filter whose transmission gives the requested power (within 2 %); the fact sheet marks
        this command as untested on a real LabSpec. ``"none"``: the power is set by hand on the
        instrument and must equal ``full_laser_power_mW``.
    axis_unit : {"nm", "cm-1"}
        Unit of LabSpec's ``EnableSpectralResponse`` axis (nm per the reference client).
    name : str
        Name used in error messages.

    Attributes
    ----------
    link_errors : tuple of exception types
        Failures that mean the link is lost (closed, silent, out of step), not that LabSpec
        refused a command: :meth:`reconnect` is the remedy.
    """

    link_errors: tuple[type[BaseException], ...] = (
        ConnectionError,
        TimeoutError,
        LabSpec6LinkError,
    )

    def __init__(
        self,
        client: LabSpec6Client,
        *,
        laser_wavelength_nm: float = 532.0,
        full_laser_power_mW: float = 10.0,
        laser_power_control: Literal["filter", "none"] = "filter",
        axis_unit: Literal["nm", "cm-1"] = "nm",
        name: str = "labspec6",
    ) -> None:
        self.name = name
        self.laser_wavelength_nm = check_laser_wavelength(laser_wavelength_nm, owner=name)
        full_laser_power_mW = as_positive(
            full_laser_power_mW, f"{name}.full_laser_power", unit="mW"
        )
        if laser_power_control not in ("filter", "none"):
            raise ValueError(
                f"{name}.laser_power_control {laser_power_control!r} is not 'filter' or 'none'"
            )
        if axis_unit not in ("nm", "cm-1"):
            raise ValueError(f"{name}.axis_unit {axis_unit!r} is not 'nm' or 'cm-1'")
        self.client = client
        self.full_laser_power_mW = float(full_laser_power_mW)
        self.laser_power_control = laser_power_control
        self.axis_unit = axis_unit
        self._configured = False
        self._acquisition_time_s: float | None = None
        self._axis_cm1: np.ndarray | None = None
        self._filter_transmissions: list[float] | None = None

    @classmethod
    def connect(
        cls,
        host: str = "localhost",
        port: int = DEFAULT_PORT,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        **kwargs: Any,
    ) -> LabSpec6Backend:
        """Connect to LabSpec at ``host:port``; ``kwargs`` go to the constructor."""
        return cls(LabSpec6Client.connect(host, port, timeout_s=timeout_s), **kwargs)

    @classmethod
    def from_address(cls, address: str, **kwargs: Any) -> LabSpec6Backend:
        """Connect from ``TCPIP::host::port::SOCKET`` or ``host:port``."""
        host, port = parse_socket_address(address)
        return cls.connect(host, port, **kwargs)

    # --- settings -------------------------------------------------------------------------
    def configure(self, exposure_s: float, accumulations: int, laser_power_mW: float) -> None:
        """Send exposure and accumulations (LabSpec cannot report them) and the laser power.

        Raises
        ------
        ValueError
            For a non-positive exposure, accumulations < 1, or a laser power LabSpec cannot
            give (above the full power, or between ND filter steps).
        """
        exposure = as_positive(exposure_s, f"{self.name}.exposure", unit="s")
        if int(accumulations) != accumulations or accumulations < 1:
            raise ValueError(f"{self.name}.accumulations {accumulations} must be an integer >= 1")
        power = as_finite(laser_power_mW, f"{self.name}.laser_power", unit="mW")
        filter_index = self._filter_for(power)
        self._configured = False
        self._acquisition_time_s = None
        self.client.set_param("Exposure", exposure)
        self.client.set_param("Accumulations", int(accumulations))
        if filter_index is not None:
            self.client.set_param("Filter", filter_index)
        self._configured = True

    def _filter_for(self, power: float) -> int | None:
        full = self.full_laser_power_mW
        if not 0 < power <= full * 1.0001:
            raise ValueError(
                f"{self.name}.laser_power {power} mW is outside the allowed range "
                f"0 < value <= {full:g} mW"
            )
        if self.laser_power_control == "none":
            if abs(power - full) > 0.02 * full:
                raise ValueError(
                    f"{self.name}.laser_power {power} mW cannot be set remotely: the laser is "
                    f"set by hand to {full:g} mW (allowed: {full:g} mW)"
                )
            return None
        if self._filter_transmissions is None:
            _, choices = self.client.get_param("Filter")
            try:
                self._filter_transmissions = [float(c.strip().rstrip("%")) / 100 for c in choices]
            except ValueError:
                raise LabSpec6Error(
                    f"{self.name} Filter choices {choices!r} are not transmissions in %"
                ) from None
        powers = [full * t for t in self._filter_transmissions]
        for index, available in enumerate(powers):
            if abs(available - power) <= 0.02 * power:
                return index
        raise ValueError(
            f"{self.name}.laser_power {power} mW is not available: the ND filters give "
            f"{', '.join(f'{p:g}' for p in powers)} mW"
        )

    # --- acquisition ----------------------------------------------------------------------
    def _prepare(self) -> None:
        """The reference client's sequence: point list, x axis, active point (once)."""
        laser, _ = self.client.get_param("LaserWavelength")
        if abs(laser - self.laser_wavelength_nm) > 0.5:
            raise ValueError(
                f"{self.name}.laser_wavelength {self.laser_wavelength_nm} nm differs from "
                f"LabSpec's LaserWavelength {laser} nm"
            )
        self.client.set_point_list([(0, 0), (0, 0)])
        axis = self.client.spectral_axis()
        self.client.set_active_point(0)
        if self.axis_unit == "nm":
            axis = raman_shift_cm1(axis, self.laser_wavelength_nm)
        self._axis_cm1 = axis

    def acquire(self) -> tuple[np.ndarray, np.ndarray]:
        """One spectrum: ``(raman_shift_cm1, counts)``; blocks for the whole acquisition.

        Raises
        ------
        RuntimeError
            If :meth:`configure` was never called (LabSpec cannot report its exposure).
        LabSpec6Error, TimeoutError, ConnectionError
            On protocol errors, a silent server or a lost connection.
        """
        if not self._configured:
            raise RuntimeError(
                f"{self.name}: call configure() before acquire(); LabSpec cannot report its "
                f"exposure and accumulations"
            )
        if self._acquisition_time_s is None:
            self._acquisition_time_s = self.client.acquisition_time_s()
        if self._axis_cm1 is None:
            self._prepare()
        assert self._axis_cm1 is not None
        # LabSpec's AcquisitionTime is experiment time; the reply timeout is wall time.
        timeout = max(
            self.client.timeout_s,
            clock.to_wall(ACQUISITION_TIMEOUT_FACTOR * self._acquisition_time_s),
        )
        counts = self.client.start_measurement(0, timeout_s=timeout)
        if counts.shape != self._axis_cm1.shape:
            raise LabSpec6Error(
                f"{self.name} spectrum has {counts.size} points but the x axis has "
                f"{self._axis_cm1.size}"
            )
        return self._axis_cm1.copy(), counts

    def reconnect(self) -> None:
        """Open a new connection to the same server and check that it answers.

        The old connection is closed (no logout: it is presumed dead). Settings must be sent
        again with :meth:`configure` (LabSpec cannot report them), and the x axis is fetched
        again before the next acquisition.

        Raises
        ------
        ConnectionError
            If the client was not opened from an address, or the server cannot be reached.
        TimeoutError, LabSpec6Error
            If the new connection does not answer ``GetRamanParam LaserWavelength``.
        """
        address = self.client.address
        if address is None:
            raise ConnectionError(
                f"{self.name}: cannot reconnect, its LabSpec client was not opened from an address"
            )
        timeout = self.client.timeout_s
        try:
            self.client.close()
        except OSError:
            pass  # the old socket is already dead: nothing to release
        client = LabSpec6Client.connect(*address, timeout_s=timeout)
        try:
            client.get_param("LaserWavelength")  # the server must answer, not only accept
        except BaseException:
            client.close()
            raise
        self.client = client
        self._configured = False
        self._acquisition_time_s = None
        self._axis_cm1 = None

    def close(self) -> None:
        """Log out and close the connection (just close it if the link is already dead)."""
        try:
            self.client.logout()
        except self.link_errors:
            pass  # a dead link has nobody to log out from; logout() closed the socket anyway
