"""A RunEngine callback that fits every impedance spectrum as it arrives and emits the results.

:class:`EISFitCallback` sits between the RunEngine and the document consumers (e.g. a
``TiledWriter``): ``RE.subscribe(eis_fit); eis_fit.subscribe(writer)``. It forwards every
document of the run unchanged and adds, in the same run (same ``run_start`` uid):

* an ``eis_fit`` stream: one event per source event that carries impedance arrays, with the film
  resistance, conductivity, temperature, chosen model, Kramers-Kronig verdict, chi2 and the
  ``seq_num`` of the source event; a spectrum that cannot be fitted gives an event with
  ``success`` False and the error text (the exception is also logged with its traceback);
* at the end of the run, an ``eis_arrhenius`` stream: one event for all points (``group`` "all")
  and one per cycle label when a ``cycle_key`` is configured, with Ea, its error and sigma at 30 C.

The RunEngine's call only puts the document on a queue; one worker thread fits and forwards, so
the RunEngine is never held up by a fit and subscribers receive every document from that one
thread, in order. The stop document is forwarded after the run's queue is drained and the
Arrhenius summary emitted, so a writer stores the derived streams before it closes the run; its
``num_events`` gains the counts of the derived streams.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import event_model
import numpy as np

from insitu.analysis.arrhenius import CELSIUS_ZERO_K, fit_arrhenius
from insitu.analysis.eis_film import FilmGeometry, fit_film
from insitu.analysis.kramers_kronig import kramers_kronig

logger = logging.getLogger(__name__)

Subscriber = Callable[[str, dict], Any]
ROOM_TEMPERATURE_K = CELSIUS_ZERO_K + 30.0  # the paper reports conductivity at 30 C
_SOURCE = "insitu.analysis.callbacks.EISFitCallback"
_KELVIN_UNITS = {"k", "kelvin"}
_CELSIUS_UNITS = {"c", "degc", "\u00b0c", "celsius", "deg c", "degrees c"}


def _key(dtype: str, units: str | None = None) -> dict:
    return {"dtype": dtype, "shape": [], "source": _SOURCE, "units": units}


FIT_DATA_KEYS = {
    "film_resistance": _key("number", "Ohm"),
    "film_resistance_err": _key("number", "Ohm"),
    "conductivity": _key("number", "S/cm"),
    "conductivity_err": _key("number", "S/cm"),
    "temperature": _key("number", "K"),
    "model": _key("string"),
    "kk_valid": _key("boolean"),
    "kk_max_residual_percent": _key("number", "%"),
    "chi2": _key("number"),
    "residual_rms_percent": _key("number", "%"),
    "source_seq_num": _key("integer"),
    "source_uid": _key("string"),
    "success": _key("boolean"),
    "error": _key("string"),
}
ARRHENIUS_DATA_KEYS = {
    "group": _key("string"),
    "form": _key("string"),
    "Ea_eV": _key("number", "eV"),
    "Ea_stderr_eV": _key("number", "eV"),
    "prefactor": _key("number"),
    "r2": _key("number"),
    "sigma_30C": _key("number", "S/cm"),
    "n_points": _key("integer"),
    "success": _key("boolean"),
    "error": _key("string"),
}


@dataclass
class _Run:
    """What the worker knows about one open run."""

    start: dict
    descriptors: dict[str, dict] = field(default_factory=dict)
    streams: dict[str, Any] = field(default_factory=dict)
    event_counters: dict[str, int] = field(default_factory=dict)
    composers: dict[str, Any] = field(default_factory=dict)
    emitted: dict[str, int] = field(default_factory=dict)  # events per derived stream
    latest_temperature_K: float = float("nan")
    latest_cycle: Any = None
    points: list[tuple[float, float, Any]] = field(default_factory=list)  # (T_K, sigma, cycle)


class EISFitCallback:
    """Fit impedance events in a worker thread and emit ``eis_fit`` / ``eis_arrhenius`` streams.

    Parameters
    ----------
    geometry : FilmGeometry
        Electrode geometry for the conductivity.
    frequency_key, z_real_key, z_imag_key : str
        Event data keys of the spectrum (arrays of equal length; Hz, Ohm, Ohm).
    temperature_key : str or None
        Event data key of the sample temperature, taken from the same event or, if absent there,
        the latest value seen in the run; None for no temperature (and no Arrhenius summary).
    temperature_unit : {"C", "K"}
        Unit of ``temperature_key`` when its data key in the descriptor names none.
    cycle_key : str or None
        Event data key of a heating/cooling cycle label; when given, the Arrhenius summary has
        one event per label as well.
    stream_name, arrhenius_stream_name : str
        Names of the derived streams.
    arrhenius_form : {"sigmaT", "sigma"}
        See :func:`~insitu.analysis.arrhenius.fit_arrhenius`.
    """

    def __init__(
        self,
        *,
        geometry: FilmGeometry | None = None,
        frequency_key: str = "eis_frequency",
        z_real_key: str = "eis_z_real",
        z_imag_key: str = "eis_z_imag",
        temperature_key: str | None = "stage_temperature",
        temperature_unit: str = "C",
        cycle_key: str | None = None,
        stream_name: str = "eis_fit",
        arrhenius_stream_name: str = "eis_arrhenius",
        arrhenius_form: str = "sigmaT",
    ):
        if temperature_unit not in ("C", "K"):
            raise ValueError(f"temperature_unit {temperature_unit!r} must be 'C' or 'K'")
        if arrhenius_form not in ("sigmaT", "sigma"):
            raise ValueError(f"arrhenius_form {arrhenius_form!r} must be 'sigmaT' or 'sigma'")
        if stream_name == arrhenius_stream_name:
            raise ValueError("stream_name and arrhenius_stream_name must differ")
        self.geometry = FilmGeometry() if geometry is None else geometry
        self.frequency_key = frequency_key
        self.z_real_key = z_real_key
        self.z_imag_key = z_imag_key
        self.temperature_key = temperature_key
        self.temperature_unit = temperature_unit
        self.cycle_key = cycle_key
        self.stream_name = stream_name
        self.arrhenius_stream_name = arrhenius_stream_name
        self.arrhenius_form = arrhenius_form

        self._subscribers: dict[int, Subscriber] = {}
        self._next_token = 0
        self._subscribers_lock = threading.Lock()
        self._queue: queue.Queue[tuple[str, dict] | None] = queue.Queue()
        self._pending = 0
        self._pending_condition = threading.Condition()
        self._runs: dict[str, _Run] = {}
        self._descriptor_run: dict[str, str] = {}
        self._errors: list[BaseException] = []
        self._worker = threading.Thread(target=self._work, name="EISFitCallback", daemon=True)
        self._worker.start()

    # ------------------------------------------------------------------ RunEngine-facing side

    def __call__(self, name: str, doc: dict) -> None:
        """Queue a document (called by the RunEngine; returns at once)."""
        if not self._worker.is_alive():
            raise RuntimeError("EISFitCallback is closed; create a new one")
        with self._pending_condition:
            self._pending += 1
        self._queue.put((name, doc))

    def subscribe(self, callback: Subscriber) -> int:
        """Forward every document (raw and derived) to ``callback(name, doc)``; returns a token."""
        if not callable(callback):
            raise ValueError(f"subscribe: {callback!r} is not callable")
        with self._subscribers_lock:
            token = self._next_token
            self._next_token += 1
            self._subscribers[token] = callback
        return token

    def unsubscribe(self, token: int) -> None:
        """Stop forwarding to the subscriber registered under ``token``."""
        with self._subscribers_lock:
            self._subscribers.pop(token, None)

    def flush(self, timeout: float | None = 60.0) -> None:
        """Wait until every queued document has been processed and forwarded.

        Raises
        ------
        TimeoutError
            When documents are still pending after ``timeout`` seconds.
        RuntimeError
            When a subscriber raised while receiving a document, or the callback itself failed
            on one, since the last flush (each traceback was logged when it happened). A
            spectrum that fails to fit is not such an error: it gives an ``eis_fit`` event with
            ``success`` False.
        """
        with self._pending_condition:
            done = self._pending_condition.wait_for(lambda: self._pending == 0, timeout)
        if not done:
            raise TimeoutError(f"EISFitCallback: {self._pending} documents still pending")
        if self._errors:
            errors, self._errors = self._errors, []
            raise RuntimeError(
                f"EISFitCallback: {len(errors)} error(s) in the worker or a subscriber since the"
                f" last flush; first: {errors[0]!r}"
            ) from errors[0]

    wait = flush

    def close(self, timeout: float | None = 60.0) -> None:
        """Process what is queued, then stop the worker thread."""
        if self._worker.is_alive():
            self._queue.put(None)
            self._worker.join(timeout)

    # ------------------------------------------------------------------ worker side

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            name, doc = item
            try:
                self._handle(name, doc)
            except Exception as error:  # a bug here must not kill the worker and hang flush()
                logger.exception("EISFitCallback failed on a %r document", name)
                self._errors.append(error)
                if name == "stop":
                    self._emit(name, doc)
            finally:
                with self._pending_condition:
                    self._pending -= 1
                    self._pending_condition.notify_all()

    def _emit(self, name: str, doc: dict) -> None:
        with self._subscribers_lock:
            subscribers = list(self._subscribers.values())
        for subscriber in subscribers:
            try:
                subscriber(name, doc)
            except Exception as error:
                logger.exception("EISFitCallback subscriber %r failed on %r", subscriber, name)
                self._errors.append(error)

    def _handle(self, name: str, doc: dict) -> None:
        if name == "start":
            self._runs[doc["uid"]] = _Run(start=doc)
            self._emit(name, doc)
        elif name == "descriptor":
            run = self._runs.get(doc["run_start"])
            if run is not None:
                run.descriptors[doc["uid"]] = doc
                self._descriptor_run[doc["uid"]] = doc["run_start"]
            self._emit(name, doc)
        elif name == "event":
            self._emit(name, doc)
            self._process_event(doc)
        elif name == "event_page":
            self._emit(name, doc)
            for event in event_model.unpack_event_page(doc):
                self._process_event(event)
        elif name == "stop":
            run = self._runs.pop(doc["run_start"], None)
            if run is not None:
                for uid in run.descriptors:
                    self._descriptor_run.pop(uid, None)
                self._emit_arrhenius(run)
                num_events = dict(doc.get("num_events") or {})
                num_events.update(run.emitted)
                doc = {**doc, "num_events": num_events}
            self._emit(name, doc)
        else:
            self._emit(name, doc)

    def _temperature_in_kelvin(self, descriptor: dict, value: Any) -> float:
        units = (descriptor.get("data_keys", {}).get(self.temperature_key, {}).get("units")) or ""
        unit = units.strip().lower()
        assumed_kelvin = unit not in _CELSIUS_UNITS and self.temperature_unit == "K"
        kelvin = unit in _KELVIN_UNITS or assumed_kelvin
        temperature = float(value)
        return temperature if kelvin else temperature + CELSIUS_ZERO_K

    def _process_event(self, event: dict) -> None:
        run_uid = self._descriptor_run.get(event["descriptor"])
        if run_uid is None:
            return
        run = self._runs[run_uid]
        descriptor = run.descriptors[event["descriptor"]]
        if descriptor.get("name") in (self.stream_name, self.arrhenius_stream_name):
            return
        data = event["data"]
        if self.temperature_key is not None and self.temperature_key in data:
            try:
                run.latest_temperature_K = self._temperature_in_kelvin(
                    descriptor, data[self.temperature_key]
                )
            except (TypeError, ValueError):
                logger.warning("EISFitCallback: temperature %r is not a number", data)
        if self.cycle_key is not None and self.cycle_key in data:
            run.latest_cycle = data[self.cycle_key]
        keys = (self.frequency_key, self.z_real_key, self.z_imag_key)
        if not all(key in data for key in keys):
            return
        result = self._fit(data, run.latest_temperature_K)
        result["source_seq_num"] = int(event["seq_num"])
        result["source_uid"] = str(event["uid"])
        if result["success"] and math.isfinite(result["temperature"]):
            run.points.append((result["temperature"], result["conductivity"], run.latest_cycle))
        self._emit_event(run, self.stream_name, FIT_DATA_KEYS, result)

    def _fit(self, data: dict, temperature_K: float) -> dict:
        result: dict[str, Any] = {
            "film_resistance": math.nan,
            "film_resistance_err": math.nan,
            "conductivity": math.nan,
            "conductivity_err": math.nan,
            "temperature": float(temperature_K),
            "model": "",
            "kk_valid": False,
            "kk_max_residual_percent": math.nan,
            "chi2": math.nan,
            "residual_rms_percent": math.nan,
            "success": False,
            "error": "",
        }
        try:
            frequency = np.asarray(data[self.frequency_key], dtype=float)
            impedance = np.asarray(data[self.z_real_key], dtype=float) + 1j * np.asarray(
                data[self.z_imag_key], dtype=float
            )
            if frequency.shape != impedance.shape:
                raise ValueError(
                    f"{self.frequency_key} has shape {frequency.shape} but {self.z_real_key}/"
                    f"{self.z_imag_key} have {impedance.shape}"
                )
            film = fit_film(frequency, impedance, self.geometry)
            check = kramers_kronig(frequency, impedance)
            result.update(
                film_resistance=film.film_resistance,
                film_resistance_err=film.film_resistance_err,
                conductivity=film.conductivity,
                conductivity_err=film.conductivity_err,
                model=film.model,
                kk_valid=check.valid,
                kk_max_residual_percent=check.max_residual_percent,
                chi2=film.fit.chi2,
                residual_rms_percent=100.0 * film.fit.residual_rms,
                success=film.success,
                error="" if film.success else f"fit did not determine R1: {film.fit.message}",
            )
        except Exception as error:
            logger.exception("EISFitCallback: fitting an impedance event failed")
            result["error"] = "".join(traceback.format_exception_only(error)).strip()
        return {key: _plain(value) for key, value in result.items()}

    def _emit_arrhenius(self, run: _Run) -> None:
        if self.stream_name not in run.emitted:
            return  # no impedance in this run
        if self.temperature_key is None:
            return
        groups: list[tuple[str, list[tuple[float, float, Any]]]] = [("all", run.points)]
        if self.cycle_key is not None:
            labels = dict.fromkeys(point[2] for point in run.points)
            groups += [(str(label), [p for p in run.points if p[2] == label]) for label in labels]
        for group, points in groups:
            data: dict[str, Any] = {
                "group": group,
                "form": self.arrhenius_form,
                "Ea_eV": math.nan,
                "Ea_stderr_eV": math.nan,
                "prefactor": math.nan,
                "r2": math.nan,
                "sigma_30C": math.nan,
                "n_points": len(points),
                "success": False,
                "error": "",
            }
            try:
                fit = fit_arrhenius(
                    [p[0] for p in points], [p[1] for p in points], form=self.arrhenius_form
                )
                data.update(
                    Ea_eV=fit.Ea_eV,
                    Ea_stderr_eV=fit.Ea_stderr_eV,
                    prefactor=fit.prefactor,
                    r2=fit.r2,
                    sigma_30C=fit.sigma_at(ROOM_TEMPERATURE_K),
                    success=True,
                )
            except ValueError as error:  # too few points is expected, not a bug: no traceback
                data["error"] = str(error)
            self._emit_event(
                run, self.arrhenius_stream_name, ARRHENIUS_DATA_KEYS, _plain_dict(data)
            )

    def _emit_event(self, run: _Run, stream: str, data_keys: dict, data: dict) -> None:
        if stream not in run.composers:
            bundle = event_model.compose_descriptor(
                start=run.start,
                streams=run.streams,
                event_counters=run.event_counters,
                name=stream,
                data_keys={key: dict(value) for key, value in data_keys.items()},
                object_keys={stream: list(data_keys)},
            )
            run.composers[stream] = bundle.compose_event
            self._emit("descriptor", bundle.descriptor_doc)
        now = time.time()
        event = run.composers[stream](data=data, timestamps=dict.fromkeys(data, now), time=now)
        run.emitted[stream] = run.emitted.get(stream, 0) + 1
        self._emit("event", event)


def _plain(value: Any) -> Any:
    """numpy scalars to Python ones, so documents serialize as JSON."""
    if isinstance(value, np.generic):
        return value.item()
    return value


def _plain_dict(data: dict) -> dict:
    return {key: _plain(value) for key, value in data.items()}
