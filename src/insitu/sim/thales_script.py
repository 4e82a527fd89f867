"""The emulated Thales behind Term: Remote Script commands, their ranges, and the measurements.

A ScriptRemote telegram is ``"1:" + command + ":"`` (several commands may be chained with
``:``, e.g. ``1:Gal=0:GAL=0:``); the reply is one ASCII string per telegram: ``OK`` after
settings, a value (``impedance=<re>,<im>``, ``potential=<V>V``...) after queries, and
``ERROR;<code>;<n>`` when command ``n`` (1-based) of the telegram failed. Replies end in ``\\r``
like those of a real Thales.

Error codes: 100 (parameter out of range) is the Remote2 manual's, as quoted by
``thales_remote.error``; the others are this emulator's own numbers (the manual's table is not
reproduced here) and are listed in :class:`ErrorCode`.

Ranges (those of a Zennium with current Thales, as far as the emulator models one): frequencies
10 uHz - 4 MHz, amplitude 0 - 1000 mV, potential -4 V - +4 V, current -3 A - +3 A, periods
1 - 100, steps per decade 1 - 100. Only single-sine scans are emulated (``ScanStrategy=0``).
"""

from __future__ import annotations

import datetime
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum

from insitu import clock
from insitu.sim.thales_eis import (
    SWEEP_SETUP_S,
    frequency_grid,
    ism_file,
    measuring_order,
    point_duration_s,
)
from insitu.sim.thales_faults import FaultSwitch

__all__ = ["ErrorCode", "NumberRange", "ThalesInstrument", "ImpedanceModel"]

ImpedanceModel = Callable[[float], complex]


class ErrorCode(IntEnum):
    """Codes of ``ERROR;<code>;<n>`` replies."""

    PARAMETER_OUT_OF_RANGE = 100  # Remote2 manual
    UNKNOWN_COMMAND = 10  # emulator's own
    OVERLOAD = 300  # emulator's own: measurement stopped, current or voltage overload
    FILE_EXISTS = 301  # emulator's own: "individual" file name already used
    ABORTED = 302  # emulator's own: measurement aborted from Term


@dataclass(frozen=True)
class NumberRange:
    """Allowed values of a numeric Remote2 setting."""

    low: float
    high: float
    integer: bool = False

    def accepts(self, value: float) -> bool:
        """True if ``value`` is inside the range (and whole, for integer settings)."""
        if self.integer and value != int(value):
            return False
        return self.low <= value <= self.high


_FREQUENCY = NumberRange(1e-5, 4e6)
# Wall seconds a finished sweep's last instant stays pinned for a client that never takes the
# result (virtual time; normally it claims it within milliseconds).
_RESULT_WALL_LIMIT_S = 2.0
NUMBER_SETTINGS: dict[str, NumberRange] = {
    "Pset": NumberRange(-4.0, 4.0),
    "Cset": NumberRange(-3.0, 3.0),
    "Frq": _FREQUENCY,
    "Fmax": _FREQUENCY,
    "Fmin": _FREQUENCY,
    "Fstart": _FREQUENCY,
    "Ampl": NumberRange(0.0, 1000.0),  # mV
    "Nw": NumberRange(1, 100, integer=True),
    "Nws": NumberRange(1, 100, integer=True),
    "Nwl": NumberRange(1, 100, integer=True),
    "dfm": NumberRange(1, 100, integer=True),
    "dfl": NumberRange(1, 100, integer=True),
    "EIS_NUM": NumberRange(0, 999_999, integer=True),
    "Rmin": NumberRange(0, 20, integer=True),
    "Rmax": NumberRange(0, 20, integer=True),
    "Potrange": NumberRange(0, 20, integer=True),
}
CHOICE_SETTINGS: dict[str, frozenset[int]] = {
    "Pot": frozenset({0, -1}),
    "Gal": frozenset({0, -1}),
    "GAL": frozenset({0, 1, -1}),
    "ScanStrategy": frozenset({0}),
    "ScanDirection": frozenset({0, 1}),
    "EIS_MOD": frozenset({0, 1, 2}),
    "DEV%": frozenset({0}),
    "UseRuleFile": frozenset({0, 1}),
}
TEXT_SETTINGS = frozenset({"EIS_PATH", "EIS_ROOT"})
_DEFAULTS: dict[str, float | str] = {
    "Pset": 0.0,
    "Cset": 0.0,
    "Frq": 1000.0,
    "Ampl": 0.0,
    "Nw": 10,
    "Fmax": 100e3,
    "Fmin": 1.0,
    "Fstart": 1000.0,
    "Nws": 20,
    "Nwl": 5,
    "dfm": 5,
    "dfl": 5,
    "ScanStrategy": 0,
    "ScanDirection": 0,
    "EIS_MOD": 0,
    "EIS_NUM": 0,
    "EIS_PATH": r"c:\thales\temp",
    "EIS_ROOT": "eis",
    "Gal": 0,
    "GAL": 0,
    "DEV%": 0,
    "UseRuleFile": 0,
    "Rmin": 0,
    "Rmax": 20,
    "Potrange": 0,
}
_OK = "OK\r"
_INDIVIDUAL, _COUNTER, _DATE_TIME = 2, 1, 0


class _DroppedError(Exception):
    """Term dropped the connections during the command: there is nobody to reply to."""


class _FailedError(Exception):
    def __init__(self, code: ErrorCode) -> None:
        super().__init__(code)
        self.code = code


def split_commands(telegram: str) -> list[str]:
    """The commands of a ScriptRemote telegram ``1:<cmd>:<cmd>:``.

    ``:`` separates commands, except the drive colon of a path (``EIS_PATH=c:\\thales``).
    """
    body = telegram[2:] if telegram.startswith("1:") else telegram
    commands: list[str] = []
    for piece in body.split(":"):
        if commands and piece[:1] in ("\\", "/"):
            commands[-1] += ":" + piece
        elif piece:
            commands.append(piece)
    return commands


def normalize_path(path: str) -> str:
    """Thales paths compare case-insensitively, with either slash."""
    return path.replace("/", "\\").lower()


class ThalesInstrument:
    """Thales and its potentiostat: settings, potentiostat state, measurements and result files.

    Parameters
    ----------
    impedance_model : callable(frequency_Hz) -> complex
        The cell's impedance now (with noise); called once per measured point.
    faults : FaultSwitch
        Armed faults.
    on_drop : callable()
        Called to drop every client connection (fault ``drop_connection_mid_sweep``).
    on_file : callable(path, data)
        Called with each result file Thales writes (for automatic file exchange).
    serial_number : str
        Digits reported as the instrument's serial number.
    """

    def __init__(
        self,
        impedance_model: ImpedanceModel,
        faults: FaultSwitch,
        *,
        on_drop: Callable[[], None],
        on_file: Callable[[str, bytes], None],
        serial_number: str = "10001",
    ) -> None:
        self.impedance_model = impedance_model
        self.serial_number = serial_number
        self._faults = faults
        self._on_drop = on_drop
        self._on_file = on_file
        self._run_lock = threading.RLock()  # Thales runs one script command at a time
        self._state_lock = threading.Lock()
        self._abort = threading.Event()
        self._settings: dict[str, float | str] = dict(_DEFAULTS)
        self._potentiostat_on = False
        self._potentiostat_log: list[tuple[float, bool]] = []
        self._received: list[str] = []
        self._files: dict[str, bytes] = {}
        self._last_activity = time.monotonic()

    # --- what tests and the Term look at -------------------------------------------------------
    @property
    def potentiostat_on(self) -> bool:
        """Whether the potentiostat is switched on."""
        with self._state_lock:
            return self._potentiostat_on

    @property
    def potentiostat_log(self) -> list[tuple[float, bool]]:
        """Every potentiostat switching as ``(experiment time, on)``."""
        with self._state_lock:
            return list(self._potentiostat_log)

    @property
    def received_commands(self) -> list[str]:
        """Every Remote Script command received, in order (``"Fmax=1.0e+06"``, ``"EIS"``...)."""
        with self._state_lock:
            return list(self._received)

    @property
    def files(self) -> dict[str, bytes]:
        """Result files Thales has written, by normalized full path."""
        with self._state_lock:
            return dict(self._files)

    def setting(self, name: str) -> float | str:
        """Current value of the Remote2 setting ``name``."""
        with self._state_lock:
            return self._settings[name]

    def clear_record(self) -> None:
        """Forget received commands and the potentiostat log (state and files stay)."""
        with self._state_lock:
            self._received.clear()
            self._potentiostat_log.clear()

    def milliseconds_since_activity(self) -> float:
        """Heartbeat: wall milliseconds since the workstation last did anything."""
        return (time.monotonic() - self._last_activity) * 1000.0

    # --- control from Term ---------------------------------------------------------------------
    def abort_measurement(self) -> None:
        """Stop a running measurement at the next point and wait until Thales is idle again."""
        self._abort.set()
        with self._run_lock:
            pass

    # --- Remote Script -------------------------------------------------------------------------
    def execute(self, telegram: str) -> str | None:
        """Run one ScriptRemote telegram; return its reply, or None if the link was dropped."""
        commands = split_commands(telegram)
        with self._state_lock:
            self._received.extend(commands)
        replies = []
        with self._run_lock:
            self._abort.clear()
            for index, command in enumerate(commands, start=1):
                injected = self._faults.take_error_reply(command)
                if injected is not None:
                    return f"ERROR;{injected};{index}\r"
                try:
                    reply = self._command(command)
                except _FailedError as failure:
                    return f"ERROR;{int(failure.code)};{index}\r"
                except _DroppedError:
                    return None
                finally:
                    self._last_activity = time.monotonic()
                if reply is not None:
                    replies.append(reply)
        return ";".join(replies) + "\r" if replies else _OK

    def _command(self, command: str) -> str | None:
        name, has_value, value = command.partition("=")
        if has_value:
            self._assign(name, value)
            return None
        queries: dict[str, Callable[[], str | None]] = {
            "EIS": self._measure_eis,
            "IMPEDANCE": self._measure_impedance,
            "POTENTIAL": self._potential,
            "CURRENT": self._current,
            "CALOFFSETS": self._calibrate_offsets,
            "SENDSETUP": self._setup_text,
            "ALLNUM": lambda: f"0;{self.serial_number};ZENNIUM",
            "DEVINF": lambda: f"0;0;ZENNIUM;{self.serial_number}",
        }
        if name not in queries:
            raise _FailedError(ErrorCode.UNKNOWN_COMMAND)
        return queries[name]()

    def _assign(self, name: str, text: str) -> None:
        if name in TEXT_SETTINGS:
            value: float | str = text
        elif name in NUMBER_SETTINGS or name in CHOICE_SETTINGS:
            try:
                value = float(text)
            except ValueError:
                raise _FailedError(ErrorCode.PARAMETER_OUT_OF_RANGE) from None
            allowed = NUMBER_SETTINGS.get(name)
            if allowed is not None and not allowed.accepts(value):
                raise _FailedError(ErrorCode.PARAMETER_OUT_OF_RANGE)
            if name in CHOICE_SETTINGS and value not in CHOICE_SETTINGS[name]:
                raise _FailedError(ErrorCode.PARAMETER_OUT_OF_RANGE)
        else:
            raise _FailedError(ErrorCode.UNKNOWN_COMMAND)
        with self._state_lock:
            self._settings[name] = value
            if name == "Pot":
                self._potentiostat_on = value == -1
                self._potentiostat_log.append((clock.now(), self._potentiostat_on))

    def _potential(self) -> str:
        volts = float(self.setting("Pset")) if self.potentiostat_on else 0.0
        return f"potential= {volts:.6e}V"

    def _current(self) -> str:
        # Blocking electrodes pass no DC current beyond a tiny leakage.
        volts = float(self.setting("Pset")) if self.potentiostat_on else 0.0
        return f"current= {volts / 1e12:.6e}A"

    def _calibrate_offsets(self) -> None:
        self._wait(2.0)

    def _setup_text(self) -> str:
        with self._state_lock:
            items = ";".join(f"{k}={v}" for k, v in self._settings.items())
        return f"OK;SETUP;{items};ENDSETUP"

    def _wait(self, seconds: float) -> None:
        if not clock.sleep(seconds, cancel=self._abort):
            raise _FailedError(ErrorCode.ABORTED)

    def _wait_until(self, t: float) -> None:
        if not clock.sleep_until(t, cancel=self._abort):
            raise _FailedError(ErrorCode.ABORTED)

    def _measure_impedance(self) -> str:
        if self._faults.overload:
            raise _FailedError(ErrorCode.OVERLOAD)
        frequency = float(self.setting("Frq"))
        periods = int(float(self.setting("Nw")))
        self._wait(periods / frequency + 0.5)
        z = complex(self.impedance_model(frequency))
        return f"impedance={z.real:.6e},{z.imag:.6e}"

    def _measure_eis(self) -> None:
        with self._state_lock:
            s = dict(self._settings)
        f_min, f_max, f_start = float(s["Fmin"]), float(s["Fmax"]), float(s["Fstart"])
        nws, nwl = int(float(s["Nws"])), int(float(s["Nwl"]))
        if not (f_min < f_max and f_min <= f_start <= f_max) or nws < nwl:
            raise _FailedError(ErrorCode.PARAMETER_OUT_OF_RANGE)
        if float(s["Ampl"]) <= 0:
            raise _FailedError(ErrorCode.PARAMETER_OUT_OF_RANGE)
        path = self._result_path(s)
        grid = frequency_grid(f_min, f_max, int(float(s["dfm"])), int(float(s["dfl"])))
        order = measuring_order(grid, f_start, start_to_max=int(float(s["ScanDirection"])) == 0)
        temperature = getattr(self.impedance_model, "temperature", None)
        start_temperature = float(temperature()) if callable(temperature) else None
        # Each point ends at its place in the sweep's schedule, not a fixed time after the
        # previous one woke: at a high speed-up a thread's late wake-up (wall milliseconds) is
        # seconds of experiment, and 40 of them would lengthen every sweep, more on a loaded
        # machine. An instrument keeps its own schedule.
        end = clock.now() + SWEEP_SETUP_S
        # On virtual time the schedule is pinned: time stands at each point while it is
        # computed, and at the sweep's end until the client has taken the result (claim).
        schedule = clock.pin(end, until_claimed=True, wall_limit=_RESULT_WALL_LIMIT_S)
        try:
            self._wait_until(end)
            measured: list[complex] = []
            for index, frequency in enumerate(order):
                if index == len(order) // 2:
                    if self._faults.take_drop():
                        self._on_drop()
                        raise _DroppedError()
                    if self._faults.overload:
                        raise _FailedError(ErrorCode.OVERLOAD)
                end += point_duration_s(frequency, nws, nwl)
                if schedule is not None:
                    schedule.move(end)
                self._wait_until(end)
                measured.append(complex(self.impedance_model(frequency)))
                self._last_activity = time.monotonic()
        except BaseException:
            if schedule is not None:
                schedule.release()
            raise
        data = ism_file(
            order,
            measured,
            amplitude_mV=float(s["Ampl"]),
            potential_V=float(s["Pset"]),
            temperature_C=start_temperature,
            comment=f"EIS {f_max:g} Hz to {f_min:g} Hz",
        )
        with self._state_lock:
            self._files[normalize_path(path)] = data
        self._on_file(path, data)

    def _result_path(self, s: dict[str, float | str]) -> str:
        root, mode = str(s["EIS_ROOT"]), int(float(s["EIS_MOD"]))
        if mode == _INDIVIDUAL:
            name = root
        elif mode == _COUNTER:
            number = int(float(s["EIS_NUM"]))
            with self._state_lock:
                self._settings["EIS_NUM"] = number + 1
            name = f"{root}_{number:04d}"
        else:
            stamp = datetime.datetime.fromtimestamp(clock.now()).strftime("%Y%m%d_%H%M%S")
            name = f"{root}_{stamp}"
        path = str(s["EIS_PATH"]).rstrip("\\/") + "\\" + name + ".ism"
        with self._state_lock:
            exists = normalize_path(path) in self._files
        if exists and mode == _INDIVIDUAL:
            raise _FailedError(ErrorCode.FILE_EXISTS)
        return path

    def file(self, path: str) -> bytes | None:
        """The result file at ``path`` on the Thales PC, or None."""
        with self._state_lock:
            return self._files.get(normalize_path(path))
