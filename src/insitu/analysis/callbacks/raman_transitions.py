"""A RunEngine callback that analyses each Raman spectrum as it arrives and flags transitions.

:class:`RamanTransitionCallback` sits between the RunEngine and the document consumers:
``RE.subscribe(raman); raman.subscribe(writer)``. It forwards every document unchanged and adds,
in the same run:

* a ``raman_analysis`` stream: one event per spectrum event, with the detector's statistics
  (:class:`~insitu.analysis.transition_features.TransitionFeatures`: the crystalline and
  decomposed band signals with their errors and in units of noise, the learned state's
  amplitude, noise, number of spikes, new peaks), the temperature used, the index of the spectrum
  in the ramp, the ``seq_num``/``uid`` of the source event, the flags it raised, and
  ``success``/``error`` (a spectrum that cannot be analysed gives an event with ``success``
  False; the exception is logged with its traceback *and* raised by ``flush()``);
* a ``transitions`` stream: one event per :class:`~insitu.analysis.transitions.TransitionFlag`
  (kind, index, temperature, confidence, evidence as text, statistic, level, CUSUM).

Each flag is also logged at WARNING level and put in the ``transition`` Signal
(``callback.transition``: the kind of the latest flag, "" at the start of a run), which a plan
reads with ``yield from bps.rd(callback.transition)``.

Where the data come from: the spectrum is ``spectrum_key`` of an event; the wavenumber axis is
``wavenumber_key`` in the event or, as the ``RamanSpectrometer`` records it, in the descriptor's
configuration (``descriptor["configuration"]["raman"]["data"]["raman_wavenumber"]``; any device's
configuration is searched); the temperature is ``<temperature_key>_mean`` of the event if present
(a heat-ramp plan records the mean over the exposure), else ``temperature_key``, else the latest
value seen in the run. Each run gets a fresh :class:`~insitu.analysis.transitions.
RamanTransitionDetector`.

Waiting for the analysis: the RunEngine's call only queues the document, so right after
``trigger_and_read`` the analysis of that spectrum may not have run yet. ``callback.analysed``
is a Signal holding the ``seq_num`` of the last analysed spectrum event of the current run;
*setting* it waits: ``yield from bps.mv(callback.analysed, n)`` returns once event ``n`` is
analysed, and ``bps.mv(callback.analysed, 0)`` once the latest spectrum event received so far is.
Outside a plan, ``callback.wait_for_analysis(seq_num=None, timeout=...)`` blocks the same way::

    yield from bps.trigger_and_read([raman, stage])
    yield from bps.mv(callback.analysed, 0)      # the spectrum just read is analysed
    kind = yield from bps.rd(callback.transition)
    if kind == "crystallization_onset":
        ...  # hold, slow down, stop
"""

from __future__ import annotations

import logging
import math
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from ophyd import Signal
from ophyd.status import Status

from insitu import clock
from insitu.analysis.callbacks._derived_stream import DerivedRun, DerivedStreamCallback, data_key
from insitu.analysis.raman_reference import LLZO, RamanReference
from insitu.analysis.rest_call import REST_COLUMNS
from insitu.analysis.transition_features import RECORD_KEYS, TransitionFeatures
from insitu.analysis.transitions import RamanTransitionDetector, TransitionFlag
from insitu.checks import in_range

__all__ = ["RamanTransitionCallback", "AnalysisProgress", "TRANSITION_DATA_KEYS"]

logger = logging.getLogger(__name__)
_SOURCE = "insitu.analysis.callbacks.RamanTransitionCallback"
LATEST = 0  # set(analysed, LATEST): wait for the latest spectrum event received


def _key(dtype: str, units: str | None = None) -> dict:
    return data_key(dtype, units, source=_SOURCE)


TRANSITION_DATA_KEYS = {
    "kind": _key("string"),
    "index": _key("integer"),
    "temperature": _key("number", "degC"),
    "confidence": _key("number"),
    "evidence": _key("string"),
    "value": _key("number"),
    "level": _key("number"),
    "cusum": _key("number"),
    "source_seq_num": _key("integer"),
    "source_uid": _key("string"),
}


_INTEGER_KEYS = {"n_peaks", "n_spikes"}
_UNITS = {"noise": "counts", "peak_positions": "cm^-1"}


def _analysis_data_keys() -> dict[str, dict]:
    keys = {
        "index": _key("integer"),
        "temperature": _key("number", "degC"),
    }
    for name in RECORD_KEYS:
        dtype = (
            "integer"
            if name in _INTEGER_KEYS
            else "string"
            if name == "peak_positions"
            else "number"
        )
        keys[name] = _key(dtype, _UNITS.get(name))
    keys.update(
        {
            "flags": _key("string"),
            "source_seq_num": _key("integer"),
            "source_uid": _key("string"),
            "success": _key("boolean"),
            "error": _key("string"),
            # The detector's standing warnings (spectra normalized one by one, an axis without
            # a flag's bands): in the run's data, not only in a log an unattended run loses.
            "warning": _key("string"),
        }
    )
    return keys


class AnalysisProgress(Signal):
    """``seq_num`` of the last analysed spectrum event; ``set(n)`` waits until event ``n`` is.

    ``set(0)`` waits for the latest spectrum event the callback has received. The Status of
    ``set`` fails after ``timeout`` seconds (default 60 s wall time).
    """

    def __init__(self, *, owner: RamanTransitionCallback, timeout: float = 60.0, **kwargs: Any):
        super().__init__(value=0, **kwargs)
        self._owner = owner
        self._timeout = timeout

    def set(self, value: Any, *, timeout: float | None = None, **kwargs: Any) -> Status:
        """Return a Status that finishes once spectrum event ``value`` has been analysed."""
        return self._owner.analysis_status(
            self, value, timeout=self._timeout if timeout is None else timeout
        )


@dataclass
class _RamanRun(DerivedRun):
    detector: RamanTransitionDetector | None = None
    axes: dict[str, np.ndarray | None] = field(default_factory=dict)  # descriptor uid -> axis
    latest_temperature: float = math.nan
    flags: list[TransitionFlag] = field(default_factory=list)
    # The columns a film at rest is called from, as the analysis stream holds them.
    rest_columns: dict[str, list[float]] = field(
        default_factory=lambda: {key: [] for key in REST_COLUMNS}
    )


class RamanTransitionCallback(DerivedStreamCallback):
    """Analyse Raman spectrum events in a worker thread; emit ``raman_analysis``/``transitions``.

    Parameters
    ----------
    reference : RamanReference
        Material reference (LLZO by default).
    spectrum_key : str
        Event data key of the counts.
    wavenumber_key : str
        Key of the Raman-shift axis, in the event data or the descriptor's configuration.
    temperature_key : str
        Event data key of the sample temperature (C); ``<temperature_key>_mean`` wins if present.
    detector_options : dict, optional
        Keyword arguments of :class:`~insitu.analysis.transitions.RamanTransitionDetector`.
    analysis_stream, transitions_stream : str
        Names of the derived streams.
    wait_timeout : float
        Default timeout (s) of the Status returned by ``analysed.set``.
    defer_s : float
        Start analysing a spectrum no sooner than this (wall seconds) after the RunEngine emitted
        it: the RunEngine's next steps (move, trigger) run first instead of waiting for the
        interpreter lock held by the analysis (a backlog is analysed without waiting).

    Attributes
    ----------
    transition : ophyd.Signal
        Kind of the latest flag of the current run ("" before any).
    analysed : AnalysisProgress
        ``seq_num`` of the last analysed spectrum event; setting it waits (see the module doc).
    """

    def __init__(
        self,
        *,
        reference: RamanReference = LLZO,
        spectrum_key: str = "raman_spectrum",
        wavenumber_key: str = "raman_wavenumber",
        temperature_key: str = "stage_temperature",
        detector_options: dict[str, Any] | None = None,
        analysis_stream: str = "raman_analysis",
        transitions_stream: str = "transitions",
        wait_timeout: float = 60.0,
        defer_s: float = 0.02,
    ) -> None:
        if analysis_stream == transitions_stream:
            raise ValueError("analysis_stream and transitions_stream must differ")
        for name, key in (
            ("spectrum_key", spectrum_key),
            ("wavenumber_key", wavenumber_key),
            ("temperature_key", temperature_key),
        ):
            if not isinstance(key, str) or not key:
                raise ValueError(f"RamanTransitionCallback.{name} {key!r} must be a non-empty str")
        self.reference = reference
        self.spectrum_key = spectrum_key
        self.wavenumber_key = wavenumber_key
        self.temperature_key = temperature_key
        self.detector_options = dict(detector_options or {})
        RamanTransitionDetector(reference, **self.detector_options)  # validate options now
        self.analysis_stream = analysis_stream
        self.transitions_stream = transitions_stream
        self.analysis_data_keys = _analysis_data_keys()
        self.transition = Signal(name="transition", value="")
        self.analysed = AnalysisProgress(
            owner=self, name="raman_analysed_seq_num", timeout=wait_timeout
        )
        self.flags: list[TransitionFlag] = []
        self._run_detector: RamanTransitionDetector | None = None
        self._run_columns: dict[str, list[float]] = {}
        self._progress = threading.Condition()
        self._current_run_uid: str | None = None  # the run the RunEngine sent last
        self._received_seq_num = 0  # of its latest spectrum event
        self._analysed_seq_num = 0  # of its last analysed spectrum event
        self._waiters: list[tuple[str | None, int, Status]] = []
        self._finished_run_uid: str | None = None  # the last run whose stop was processed
        self.defer_s = in_range(defer_s, 0.0, 1.0, "RamanTransitionCallback.defer_s", unit="s")
        self._arrivals: dict[str, float] = {}  # event uid -> monotonic arrival time
        super().__init__(name="RamanTransitionCallback")

    # ------------------------------------------------------------------ waiting

    def __call__(self, name: str, doc: dict) -> None:
        """Queue a document (called by the RunEngine; returns at once)."""
        if name == "start":
            with self._progress:
                self._current_run_uid = doc.get("uid")
                self._received_seq_num = 0
                self._analysed_seq_num = 0
        elif name == "event" and self.spectrum_key in doc.get("data", {}):
            with self._progress:
                self._received_seq_num = max(self._received_seq_num, int(doc["seq_num"]))
                self._arrivals[doc["uid"]] = time.monotonic()
        super().__call__(name, doc)

    def analysis_status(self, signal: Signal, seq_num: Any, *, timeout: float) -> Status:
        """A Status of ``signal`` that finishes once spectrum event ``seq_num`` is analysed.

        ``seq_num`` 0 means the latest spectrum event received; the Status fails after
        ``timeout`` seconds (wall time).

        Raises
        ------
        ValueError
            If ``seq_num`` is not an integer >= 0.
        """
        target = self._target_seq_num(seq_num)
        status = clock.mark_instant(Status(signal, timeout=timeout))
        self._add_waiter(target, status)
        return status

    def _target_seq_num(self, value: Any) -> int:
        try:
            target = int(value)
        except (TypeError, ValueError):
            raise ValueError(f"analysed: seq_num {value!r} is not an integer") from None
        if target < 0:
            raise ValueError(f"analysed: seq_num {target} must be >= 0 (0 means the latest)")
        with self._progress:
            return self._received_seq_num if target == LATEST else target

    def _add_waiter(self, target: int, status: Status) -> None:
        with self._progress:
            finished = self._finished_run_uid == self._current_run_uid
            if self._analysed_seq_num >= target or finished:
                status.set_finished()
                return
            self._waiters.append((self._current_run_uid, target, status))

    def _release_waiters(self, run_uid: str, up_to: float) -> None:
        with self._progress:
            ready = [w for w in self._waiters if w[0] == run_uid and w[1] <= up_to]
            self._waiters = [w for w in self._waiters if not (w[0] == run_uid and w[1] <= up_to)]
        for _, _, status in ready:
            if not status.done:
                status.set_finished()

    def _mark_analysed(self, run_uid: str, seq_num: int) -> None:
        with self._progress:
            if run_uid != self._current_run_uid:
                return  # an older run still draining: nobody waits on its numbers
            self._analysed_seq_num = max(self._analysed_seq_num, seq_num)
            analysed = self._analysed_seq_num
            self._progress.notify_all()
        self.analysed.put(analysed)
        self._release_waiters(run_uid, analysed)

    def wait_for_analysis(self, seq_num: int | None = None, timeout: float | None = 60.0) -> int:
        """Block until spectrum event ``seq_num`` (default: the latest received) is analysed.

        Returns
        -------
        int
            The ``seq_num`` of the last analysed spectrum event.

        Raises
        ------
        TimeoutError
            If it is not analysed within ``timeout`` seconds.
        """
        target = self._target_seq_num(LATEST if seq_num is None else seq_num)
        with self._progress:
            run_uid = self._current_run_uid
            done = self._progress.wait_for(
                lambda: (
                    self._analysed_seq_num >= target
                    or self._current_run_uid != run_uid
                    or self._finished_run_uid == run_uid
                ),
                timeout,
            )
            if not done:
                raise TimeoutError(
                    f"RamanTransitionCallback: spectrum event {target} not analysed after "
                    f"{timeout} s (last analysed: {self._analysed_seq_num})"
                )
            return self._analysed_seq_num

    # ------------------------------------------------------------------ worker side

    @property
    def derived_streams(self) -> tuple[str, ...]:
        """The ``raman_analysis`` and ``transitions`` stream names."""
        return (self.analysis_stream, self.transitions_stream)

    def _new_run(self, start: dict) -> _RamanRun:
        self.analysed.put(0)
        self.transition.put("")
        self.flags = []
        run = _RamanRun(
            start=start, detector=RamanTransitionDetector(self.reference, **self.detector_options)
        )
        self._run_detector = run.detector
        self._run_columns = run.rest_columns
        return run

    def onset_margin(self) -> float:
        """How clear the crystallization-onset call of the latest run is, in units of noise:
        the detector's :meth:`~insitu.analysis.transitions.RamanTransitionDetector.onset_margin`
        (>= 0: flagged; NaN before a spectrum past the calibration is analysed). Wait for the
        analysis first (``bps.mv(callback.analysed, 0)``)."""
        detector = self._run_detector
        return math.nan if detector is None else detector.onset_margin()

    def rest_columns(self) -> dict[str, np.ndarray]:
        """The latest run's :data:`~insitu.analysis.rest_call.REST_COLUMNS` per spectrum event, as
        its ``raman_analysis`` stream holds them (NaN for calibration and failed spectra; for
        :func:`~insitu.analysis.rest_call.rest_call`). Wait for the analysis first."""
        return {key: np.asarray(values, dtype=float) for key, values in self._run_columns.items()}

    def onset_parameters(self) -> dict[str, float]:
        """The onset CUSUM's ``threshold``, ``drift`` and ``max_step`` of this callback's
        detectors (for :func:`~insitu.analysis.transitions.onset_margin` on a stored ramp)."""
        detector = RamanTransitionDetector(self.reference, **self.detector_options)
        return {
            "threshold": detector.threshold,
            "drift": detector.drift,
            "max_step": detector.max_step,
        }

    def _axis(self, run: _RamanRun, descriptor: dict, data: dict) -> np.ndarray | None:
        if self.wavenumber_key in data:
            return np.asarray(data[self.wavenumber_key], dtype=float)
        uid = descriptor["uid"]
        if uid not in run.axes:
            axis = None
            for device in (descriptor.get("configuration") or {}).values():
                values = (device or {}).get("data") or {}
                if self.wavenumber_key in values:
                    axis = np.asarray(values[self.wavenumber_key], dtype=float)
                    break
            run.axes[uid] = axis
        return run.axes[uid]

    def _temperature(self, run: _RamanRun, data: dict) -> float:
        for key in (f"{self.temperature_key}_mean", self.temperature_key):
            if key in data:
                try:
                    run.latest_temperature = float(data[key])
                except (TypeError, ValueError):
                    logger.warning("RamanTransitionCallback: %s %r is not a number", key, data[key])
                break
        return run.latest_temperature

    def _process_event(self, run: _RamanRun, descriptor: dict, event: dict) -> None:
        data = event["data"]
        temperature = self._temperature(run, data)
        if self.spectrum_key not in data:
            return
        seq_num = int(event["seq_num"])
        with self._progress:
            arrived = self._arrivals.pop(event["uid"], None)
        if arrived is not None:
            time.sleep(max(0.0, arrived + self.defer_s - time.monotonic()))
        record: dict[str, Any] = {"temperature": temperature, "success": False, "error": ""}
        flags: list[TransitionFlag] = []
        try:
            axis = self._axis(run, descriptor, data)
            if axis is None:
                raise ValueError(
                    f"no wavenumber axis {self.wavenumber_key!r} in the event or in the "
                    f"configuration of descriptor {descriptor.get('name')!r}"
                )
            flags = run.detector.update(axis, data[self.spectrum_key], temperature)
            record.update(self._feature_record(run.detector.last_features))
            record["warning"] = "; ".join(run.detector.warnings)
            record["success"] = True
        except Exception as error:
            logger.exception(
                "RamanTransitionCallback: analysing spectrum event %d of run %s failed",
                seq_num,
                run.start["uid"],
            )
            self._record_error(error)
            record["error"] = "".join(traceback.format_exception_only(error)).strip()
        record.update(
            index=run.detector.index - 1 if record["success"] else -1,
            flags=",".join(flag.kind for flag in flags),
            source_seq_num=seq_num,
            source_uid=str(event["uid"]),
        )
        filled = self._filled(record)
        for key, values in run.rest_columns.items():
            values.append(float(filled.get(key, math.nan)))
        self._emit_event(run, self.analysis_stream, self.analysis_data_keys, filled)
        for flag in flags:
            self._announce(run, flag, seq_num, str(event["uid"]))
        self._mark_analysed(run.start["uid"], seq_num)

    def _finish_run(self, run: _RamanRun, stop: dict) -> None:
        # Every event of the run is analysed: nothing a waiter of this run asks for will come.
        self._release_waiters(run.start["uid"], math.inf)
        with self._progress:
            self._finished_run_uid = run.start["uid"]
            self._progress.notify_all()

    def _feature_record(self, features: TransitionFeatures | None) -> dict[str, Any]:
        if features is None:
            return {}
        return features.as_record()

    def _filled(self, record: dict[str, Any]) -> dict[str, Any]:
        """All analysis keys, with NaN/-1/"" for what a failed spectrum did not give."""
        filled: dict[str, Any] = {}
        for key, spec in self.analysis_data_keys.items():
            if key in record:
                filled[key] = record[key]
            elif spec["dtype"] == "number":
                filled[key] = math.nan
            elif spec["dtype"] == "integer":
                filled[key] = -1
            elif spec["dtype"] == "boolean":
                filled[key] = False
            else:
                filled[key] = ""
        return filled

    def _announce(self, run: _RamanRun, flag: TransitionFlag, seq_num: int, uid: str) -> None:
        run.flags.append(flag)
        self.flags.append(flag)
        logger.warning("%s (run %s, event %d)", flag.message(), run.start["uid"], seq_num)
        self._emit_event(
            run,
            self.transitions_stream,
            TRANSITION_DATA_KEYS,
            {
                "kind": flag.kind,
                "index": flag.index,
                "temperature": flag.temperature,
                "confidence": flag.confidence,
                "evidence": flag.evidence,
                "value": flag.value,
                "level": flag.level,
                "cusum": flag.cusum,
                "source_seq_num": seq_num,
                "source_uid": uid,
            },
        )
        self.transition.put(flag.kind)
