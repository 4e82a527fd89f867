"""Emulator of Horiba LabSpec 6's TCP remote server, measuring the virtual garnet film.

It speaks the protocol of ``reference/labspec6.md`` on loopback TCP from a background thread:
the greeting, ``GetRamanParam``/``SetRamanParameter``, the ``SetPointList`` exchange,
``EnableSpectralResponse`` (x axis in nm, pixels evenly spaced in wavelength like a CCD behind a
grating), ``SetActivePoint``, ``StartRamanMeasurement`` (blocks for exposure x accumulations of
*experiment* time through :mod:`insitu.clock`, then returns the intensities) and ``Logout``.
Each spectrum is :func:`insitu.sim.raman_model.spectrum` of the film at the middle of the
acquisition and the mean stage temperature over it.

Laser power is set through the ``Filter`` index (ND filter transmissions in %), the fact sheet's
guess for the real instrument. Faults on command: ``no_reply``, ``error``, ``garbage``,
``disconnect`` (see :meth:`LabSpec6Emulator.inject_fault`).
"""

from __future__ import annotations

import math
import socket
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from insitu import clock
from insitu.sim import raman_model
from insitu.sim.raman_variation import FilmRamanVariation, SpectrometerVariation
from insitu.sim.sample import GarnetFilm
from insitu.sim.thermal_profile import ThermalProfile

__all__ = ["LabSpec6Emulator", "serve_standalone", "FAULTS"]

FAULTS = ("no_reply", "error", "garbage", "disconnect")
GREETING = "LabSpec6 AFM-server 0.6.2 (insitu emulator)"
GRATINGS_PER_MM = (300, 600, 1800)
FILTER_TRANSMISSIONS_PERCENT = (100.0, 50.0, 25.0, 10.0, 5.0, 1.0, 0.1, 0.01)
# A 300 g/mm grating puts 50-1000 cm-1 (532 nm) on the 1600 pixels; finer gratings span less.
_POLL_S = 0.1


@dataclass
class _Settings:
    """LabSpec's acquisition settings (shared by all connections, as in one LabSpec)."""

    exposure_s: float = 1.0
    accumulations: int = 1
    spectro_nm: float = 0.0
    grating: int = 0
    filter: int = 0
    binning: int = 1
    slit_um: float = 100.0
    hole_um: float = 100.0
    polarizers: dict[str, int] = field(
        default_factory=lambda: {"LaserPol": 0, "RamanPol": 0, "Pol1": 0, "Pol2": 0}
    )


class _PointListUpload:
    """State of a ``SetPointList`` exchange in progress."""

    def __init__(self, message_id: str, count: int, n_bytes: int) -> None:
        self.message_id = message_id
        self.count = count
        self.n_bytes = n_bytes
        self.points: list[tuple[float, float]] = []
        self.received_bytes = 0


class LabSpec6Emulator:
    """A LabSpec 6 remote server measuring a :class:`~insitu.sim.sample.GarnetFilm`.

    Parameters
    ----------
    sample : GarnetFilm
        The film under the objective.
    temperature : callable
        ``temperature() -> C``: the stage's current temperature.
    laser_wavelength_nm : float
        Excitation wavelength (reported as ``LaserWavelength``).
    full_laser_power_mW : float
        Laser power at the sample with the 100 % filter.
    seed : int, optional
        Seed of the detector noise.
    pixels : int
        Detector pixels (1600).
    variation : float
        Spread of the film-and-instrument variation (:mod:`insitu.sim.raman_variation`):
        0 (the default) measures the band table as written; at 1 this spectrometer has its own
        axis calibration error and laser drift, and every film put under it (each assignment
        to :attr:`sample`) its own band widths, ratios, amorphous bands and fluorescence, all
        drawn from ``seed``.
    """

    def __init__(
        self,
        sample: GarnetFilm,
        temperature: Callable[[], float],
        *,
        laser_wavelength_nm: float = raman_model.DEFAULT_LASER_WAVELENGTH_NM,
        full_laser_power_mW: float = 10.0,
        seed: int | None = None,
        pixels: int = raman_model.AXIS_POINTS,
        variation: float = 0.0,
    ) -> None:
        if not callable(temperature):
            raise TypeError(f"LabSpec6Emulator temperature {temperature!r} is not callable")
        if not (200.0 <= laser_wavelength_nm <= 2000.0):
            raise ValueError(f"LabSpec6Emulator laser {laser_wavelength_nm} nm is outside 200-2000")
        if not (full_laser_power_mW > 0):
            raise ValueError(f"LabSpec6Emulator full power {full_laser_power_mW} mW must be > 0")
        if not (16 <= pixels <= 16384):
            raise ValueError(f"LabSpec6Emulator pixels {pixels} is outside 16 to 16384")
        # The variation has its own streams, so the detector noise of a seed stays what it was.
        self._seed = seed
        seeds = np.random.SeedSequence(None if seed is None else (seed, 14)).spawn(3)
        self.variation_spread = float(variation)
        self._variation_rng = np.random.default_rng(seeds[2])
        self.instrument = SpectrometerVariation.draw(
            np.random.default_rng(seeds[1]), self.variation_spread
        )
        self.film_variation: FilmRamanVariation | None = None
        self.sample = sample
        self.temperature = temperature
        self.laser_wavelength_nm = float(laser_wavelength_nm)
        self.full_laser_power_mW = float(full_laser_power_mW)
        self.pixels = int(pixels)
        self._rng = np.random.default_rng(seed)
        self._time_origin = 0.0  # experiment time the laser drift is counted from
        lo, hi = raman_model.raman_shift_to_wavelength_nm(
            [raman_model.AXIS_START_CM1, raman_model.AXIS_STOP_CM1], self.laser_wavelength_nm
        )
        self._span_300_nm = float(hi - lo)
        self.settings = _Settings(spectro_nm=float(lo + hi) / 2)
        self._lock = threading.Lock()
        self._fault: str | None = None
        self._closing = threading.Event()
        self._server: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self._connections: set[socket.socket] = set()
        self.measurements = 0

    @property
    def sample(self) -> GarnetFilm:
        """The film under the objective; a new one brings its own Raman variation."""
        return self._sample

    @sample.setter
    def sample(self, film: GarnetFilm) -> None:
        self._sample = film
        if self.variation_spread > 0:
            self.film_variation = FilmRamanVariation.draw(
                self._variation_rng, self.variation_spread
            )

    def new_sample(self, film: GarnetFilm, key: int | None = None) -> None:
        """Put ``film`` under the objective; with ``key`` (a campaign's sample index), its Raman
        variation and the detector noise restart from (seed, ``key``), so that sample looks the
        same whatever was measured before it (a resumed campaign, a restarted process)."""
        if key is not None and self._seed is not None:
            noise, variation = np.random.SeedSequence((self._seed, 14, int(key))).spawn(2)
            with self._lock:
                self._rng = np.random.default_rng(noise)
                self._variation_rng = np.random.default_rng(variation)
                self._time_origin = clock.now()  # the laser's drift, too, from the change
        self.sample = film

    # --- faults ---------------------------------------------------------------------------
    def inject_fault(self, kind: str) -> None:
        """Misbehave until :meth:`clear_fault`.

        ``"no_reply"``: read commands, answer nothing. ``"error"``: answer every command with
        an error. ``"garbage"``: answer with non-protocol bytes. ``"disconnect"``: drop every
        connection now and any new one at once.
        """
        if kind not in FAULTS:
            raise ValueError(f"LabSpec6Emulator fault {kind!r} is not one of {', '.join(FAULTS)}")
        with self._lock:
            self._fault = kind
            connections = list(self._connections) if kind == "disconnect" else []
        for conn in connections:
            _shutdown(conn)

    def clear_fault(self) -> None:
        """Behave again."""
        with self._lock:
            self._fault = None

    # --- the x axis -----------------------------------------------------------------------
    def wavelength_axis_nm(self) -> np.ndarray:
        """Pixel wavelengths (nm), evenly spaced around the ``Spectro`` centre."""
        span = self._span_300_nm * GRATINGS_PER_MM[0] / GRATINGS_PER_MM[self.settings.grating]
        centre = self.settings.spectro_nm
        return np.linspace(centre - span / 2, centre + span / 2, self.pixels)

    def raman_axis_cm1(self) -> np.ndarray:
        """The pixel axis as Raman shift (cm-1)."""
        return 1e7 / self.laser_wavelength_nm - 1e7 / self.wavelength_axis_nm()

    # --- protocol -------------------------------------------------------------------------
    def _get_param(self, name: str) -> str:
        s = self.settings
        if name == "AcquisitionTime":
            return _number(s.exposure_s * s.accumulations)
        if name == "LaserWavelength":
            return _number(self.laser_wavelength_nm)
        if name == "Laser":
            return f"0 {_number(self.laser_wavelength_nm)}"
        if name == "Grating":
            return f"{s.grating} " + "#".join(str(g) for g in GRATINGS_PER_MM)
        if name == "Filter":
            return f"{s.filter} " + "#".join(_number(t) for t in FILTER_TRANSMISSIONS_PERCENT)
        if name == "Spectro":
            return _number(s.spectro_nm)
        if name == "Binning":
            return str(s.binning)
        if name == "Slit":
            return _number(s.slit_um)
        if name == "Hole":
            return _number(s.hole_um)
        if name in s.polarizers:
            return str(s.polarizers[name])
        if name == "Detector":
            return "0 CCD"
        return "Unknown"

    def _set_param(self, name: str, value_text: str) -> str:
        s = self.settings
        try:
            value = float(value_text)
        except ValueError:
            return f"Error {value_text} is not a number"
        if not math.isfinite(value):
            return f"Error {value_text} is not a number"
        if name == "Exposure":
            if not 0 < value <= 36000:
                return f"Error Exposure {value_text} out of range"
            s.exposure_s = value
        elif name == "Accumulations":
            if value != int(value) or not 1 <= value <= 10000:
                return f"Error Accumulations {value_text} out of range"
            s.accumulations = int(value)
        elif name == "Spectro":
            if not 200 <= value <= 2000:
                return f"Error Spectro {value_text} out of range"
            s.spectro_nm = value
        elif name in ("Grating", "Filter", "Laser"):
            count = {"Grating": len(GRATINGS_PER_MM), "Filter": len(FILTER_TRANSMISSIONS_PERCENT)}
            if value != int(value) or not 0 <= value < count.get(name, 1):
                return f"Error {name} index {value_text} out of range"
            if name == "Grating":
                s.grating = int(value)
            elif name == "Filter":
                s.filter = int(value)
        elif name == "Binning":
            if value != int(value) or not 1 <= value <= 64:
                return f"Error Binning {value_text} out of range"
            s.binning = int(value)
            return "Error Binning"  # the real server's quirk: it errs, yet applies the value
        elif name in ("Slit", "Hole"):
            if not 0 < value <= 2000:
                return f"Error {name} {value_text} out of range"
            if name == "Slit":
                s.slit_um = value
            else:
                s.hole_um = value
        elif name in s.polarizers:
            s.polarizers[name] = int(value)
        else:
            return "Unknown"
        return "OK"

    def _measure(self) -> str | None:
        """One acquisition; ``None`` if the emulator closed while it was running."""
        s = self.settings
        duration = s.exposure_s * s.accumulations
        t_start = clock.now()
        temperature_start = float(self.temperature())
        if not clock.sleep_until(t_start + duration, cancel=self._closing):
            return None
        temperature = 0.5 * (temperature_start + float(self.temperature()))
        state = self.sample.state(t_start + duration / 2)
        power = self.full_laser_power_mW * FILTER_TRANSMISSIONS_PERCENT[s.filter] / 100.0
        power *= self.instrument.laser_factor(t_start + duration / 2 - self._time_origin)
        with self._lock:
            rng = np.random.default_rng(self._rng.integers(2**63))
        counts = raman_model.spectrum(
            state,
            temperature,
            self.instrument.true_axis(self.raman_axis_cm1()),
            exposure_s=s.exposure_s,
            accumulations=s.accumulations,
            laser_power_mW=power,
            laser_wavelength_nm=self.laser_wavelength_nm,
            rng=rng,
            variation=self.film_variation,
        )
        self.measurements += 1
        return _array_reply(counts, "{:.2f}")

    def handle_command(self, message: str, session: dict) -> list[str] | None:
        """Reply lines (without ``\\r\\n``) to one client message; ``None`` to hang up.

        ``session`` keeps per-connection state (a point-list upload in progress).
        """
        upload: _PointListUpload | None = session.get("upload")
        if upload is not None:
            return self._receive_point(message, upload, session)
        tokens = message.split(" ")
        message_id = tokens[0]
        if len(tokens) < 2 or not message_id.lstrip("-").isdigit():
            return [f"{message_id} Error malformed message"]
        command, args = tokens[1], tokens[2:]
        if command == "GetRamanParam" and len(args) == 1:
            return [f"{message_id} {self._get_param(args[0])}"]
        if command == "SetRamanParameter" and len(args) == 2:
            return [f"{message_id} {self._set_param(args[0], args[1])}"]
        if command == "EnableSpectralResponse" and not args:
            return [f"{message_id} {_array_reply(self.wavelength_axis_nm(), '{:.5f}')}"]
        if command == "SetPointList" and len(args) == 2:
            try:
                count, n_bytes = int(args[0]), int(args[1])
            except ValueError:
                return [f"{message_id} Error SetPointList needs two integers"]
            if count < 1 or n_bytes < 1:
                return [f"{message_id} Error SetPointList {count} {n_bytes} out of range"]
            session["upload"] = _PointListUpload(message_id, count, n_bytes)
            return [f"{message_id} OK Ready to receive"]
        if command == "SetActivePoint" and len(args) == 1:
            points = session.get("points", [(0.0, 0.0)])
            if not args[0].isdigit() or int(args[0]) >= len(points):
                return [f"{message_id} Error point {args[0]} does not exist"]
            session["active"] = int(args[0])
            return [f"{message_id} OK"]
        if command == "StartRamanMeasurement" and len(args) == 1:
            points = session.get("points", [(0.0, 0.0)])
            if not args[0].isdigit() or int(args[0]) >= len(points):
                return [f"{message_id} Error point {args[0]} does not exist"]
            reply = self._measure()
            return None if reply is None else [f"{message_id} {reply}"]
        if command == "Logout" and not args:
            session["logout"] = True
            return [f"{message_id} OK"]
        return [f"{message_id} Error Unknown command {command}"]

    @staticmethod
    def _receive_point(message: str, upload: _PointListUpload, session: dict) -> list[str]:
        parts = message.split(" ")
        try:
            x, y = (float(v) for v in parts)
        except ValueError:
            session.pop("upload")
            return [f"{upload.message_id} Error point {message!r} is not 'x y'"]
        upload.points.append((x, y))
        upload.received_bytes += len(message.encode("ascii"))
        if len(upload.points) < upload.count:
            return [f"{upload.message_id} OK Point {len(upload.points) - 1}"]
        session.pop("upload")
        if upload.received_bytes != upload.n_bytes:
            return [
                f"{upload.message_id} Error received {upload.received_bytes} bytes of points, "
                f"announced {upload.n_bytes}"
            ]
        session["points"] = upload.points
        return [f"{upload.message_id} OK {upload.count} points"]

    # --- TCP server -----------------------------------------------------------------------
    def serve_tcp(self, port: int = 0, host: str = "127.0.0.1") -> int:
        """Listen on ``host:port`` (0 picks a free port) from a background thread.

        Returns
        -------
        int
            The port actually bound.
        """
        if self._server is not None:
            raise RuntimeError("LabSpec6Emulator is already serving")
        server = socket.create_server((host, int(port)))
        server.settimeout(_POLL_S)
        self._server = server
        self._closing.clear()
        thread = threading.Thread(target=self._accept_loop, name="labspec6-emulator", daemon=True)
        thread.start()
        self._threads.append(thread)
        return server.getsockname()[1]

    def _accept_loop(self) -> None:
        assert self._server is not None
        while not self._closing.is_set():
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                if self._fault == "disconnect" or self._closing.is_set():
                    _shutdown(conn)
                    continue
                self._connections.add(conn)
            thread = threading.Thread(
                target=self._serve_connection, args=(conn,), name="labspec6-conn", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def _serve_connection(self, conn: socket.socket) -> None:
        conn.settimeout(_POLL_S)
        session: dict = {}
        try:
            conn.sendall(f"0 OK {GREETING}\r\n".encode("ascii"))
            while not self._closing.is_set() and not session.get("logout"):
                try:
                    chunk = conn.recv(65536)
                except TimeoutError:
                    continue
                if not chunk:
                    return
                # One received chunk is one message; tolerate a trailing or separating newline.
                text = chunk.decode("ascii", errors="replace")
                for message in (m.strip() for m in text.replace("\r", "\n").split("\n")):
                    if message and not self._answer(conn, message, session):
                        return
        except OSError:
            return  # the client went away, or a "disconnect" fault shut the socket
        finally:
            with self._lock:
                self._connections.discard(conn)
            _shutdown(conn)

    def _answer(self, conn: socket.socket, message: str, session: dict) -> bool:
        fault = self._fault
        if fault == "no_reply":
            return True
        if fault == "disconnect":
            return False
        if fault == "garbage":
            conn.sendall(b"\xff\xfe#?! garbage \x00\r\n")
            return True
        if fault == "error" and "upload" not in session:
            message_id = message.split(" ")[0]
            conn.sendall(f"{message_id} Error injected fault\r\n".encode("ascii"))
            return True
        replies = self.handle_command(message, session)
        if replies is None:
            return False
        conn.sendall("".join(f"{line}\r\n" for line in replies).encode("ascii"))
        return True

    def close(self) -> None:
        """Stop serving: cancel acquisitions, drop connections, join the threads."""
        self._closing.set()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            _shutdown(conn)
        if self._server is not None:
            self._server.close()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout=5.0)
        self._threads.clear()
        self._server = None

    def __enter__(self) -> LabSpec6Emulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _number(value: float) -> str:
    return f"{value:.6g}"


def _array_reply(values: np.ndarray, fmt: str) -> str:
    body = " ".join(fmt.format(v) for v in values.tolist())
    return f"OK {values.size} {body}"


def _shutdown(conn: socket.socket) -> None:
    try:
        conn.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed by the peer: nothing left to shut
    conn.close()


def serve_standalone(
    port: int = 1234,
    speedup: float = 1.0,
    *,
    temperature_C: float = 25.0,
    host: str = "127.0.0.1",
    seed: int | None = None,
) -> None:
    """Serve the emulator on its own until Ctrl-C (for ``insitu sim raman``).

    The film sits on a stage held at ``temperature_C`` (it evolves if that is hot enough).

    Parameters
    ----------
    port : int
        TCP port (LabSpec's default 1234; 0 picks a free one).
    speedup : float
        Experiment-clock speed-up (exposures take exposure / speedup wall seconds).
    temperature_C : float
        Stage temperature.
    host : str
        Interface to bind (loopback by default).
    seed : int, optional
        Detector-noise seed.
    """
    if not -200.0 <= temperature_C <= 1500.0:
        raise ValueError(f"labspec6 emulator temperature {temperature_C} C is outside -200 to 1500")
    clock.set_speedup(speedup)
    film = GarnetFilm(ThermalProfile.constant(temperature_C))
    emulator = LabSpec6Emulator(film, lambda: temperature_C, seed=seed)
    bound = emulator.serve_tcp(port, host)
    print(
        f"LabSpec 6 emulator on {host}:{bound} (speed-up {speedup:g}, stage {temperature_C:g} C);"
        f" Ctrl-C to stop",
        file=sys.stderr,
        flush=True,
    )
    stop = threading.Event()
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass  # Ctrl-C is the way to stop serving
    finally:
        emulator.close()
