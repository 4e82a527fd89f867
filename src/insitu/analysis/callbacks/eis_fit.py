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
``num_events`` gains the counts of the derived streams. The queue, worker, forwarding and
``flush()``/``close()`` come from the shared base
:class:`~insitu.analysis.callbacks._derived_stream.DerivedStreamCallback`; ``flush()`` raises
for a failing subscriber or a bug in the callback, while a spectrum that fails to fit is not such
an error: it gives an ``eis_fit`` event with ``success`` False.
"""

from __future__ import annotations

import logging
import math
import traceback
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from insitu.analysis.arrhenius import CELSIUS_ZERO_K, fit_arrhenius
from insitu.analysis.callbacks._derived_stream import (
    DerivedRun,
    DerivedStreamCallback,
    Subscriber,
    data_key,
    plain,
)
from insitu.analysis.eis_film import FilmGeometry, fit_film
from insitu.analysis.kramers_kronig import kramers_kronig

logger = logging.getLogger(__name__)

__all__ = ["EISFitCallback", "FIT_DATA_KEYS", "ARRHENIUS_DATA_KEYS", "Subscriber"]

ROOM_TEMPERATURE_K = CELSIUS_ZERO_K + 30.0  # the paper reports conductivity at 30 C
_SOURCE = "insitu.analysis.callbacks.EISFitCallback"
_KELVIN_UNITS = {"k", "kelvin"}
_CELSIUS_UNITS = {"c", "degc", "\u00b0c", "celsius", "deg c", "degrees c"}


def _key(dtype: str, units: str | None = None) -> dict:
    return data_key(dtype, units, source=_SOURCE)


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
class _EISRun(DerivedRun):
    """What the worker knows about one open run."""

    latest_temperature_K: float = float("nan")
    latest_cycle: Any = None
    points: list[tuple[float, float, Any]] = field(default_factory=list)  # (T_K, sigma, cycle)


class EISFitCallback(DerivedStreamCallback):
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

        super().__init__(name="EISFitCallback")

    @property
    def derived_streams(self) -> tuple[str, ...]:
        """The ``eis_fit`` and ``eis_arrhenius`` stream names."""
        return (self.stream_name, self.arrhenius_stream_name)

    def _new_run(self, start: dict) -> _EISRun:
        return _EISRun(start=start)

    def _finish_run(self, run: _EISRun, stop: dict) -> None:
        self._emit_arrhenius(run)

    def _temperature_in_kelvin(self, descriptor: dict, value: Any) -> float:
        units = (descriptor.get("data_keys", {}).get(self.temperature_key, {}).get("units")) or ""
        unit = units.strip().lower()
        assumed_kelvin = unit not in _CELSIUS_UNITS and self.temperature_unit == "K"
        kelvin = unit in _KELVIN_UNITS or assumed_kelvin
        temperature = float(value)
        return temperature if kelvin else temperature + CELSIUS_ZERO_K

    def _process_event(self, run: _EISRun, descriptor: dict, event: dict) -> None:
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
        return _plain_dict(result)

    def _emit_arrhenius(self, run: _EISRun) -> None:
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


def _plain_dict(data: dict) -> dict:
    return {key: plain(value) for key, value in data.items()}
