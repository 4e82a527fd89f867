"""When a crystalline growth has stopped: the completion test of the Raman transition detector.

:class:`~insitu.analysis.transitions.RamanTransitionDetector` hands this module, spectrum by
spectrum, two areas read against the amorphous state frozen at the onset: the area of the modes
every crystalline phase has (for LLZO 368/389 and 651/656 cm-1; one polymorph turning into
another does not read as growth there) and the area of every isolated crystalline band (for LLZO
the same and the cubic 468 cm-1). The two see a conversion still running, and the noise,
differently, so the film has stopped crystallizing when either area has stopped growing.

A growth has stopped when its slope over about ``slope_span_C`` has fallen to ``saturation``
(0.4) of the fastest slope seen, on two consecutive spectra, and both stand out of the noise:
the fall by :data:`SLOPE_SIGNIFICANCE` standard errors of a slope beyond ``sqrt(2 ln n)`` for the
fastest being the largest of ``n`` noisy slopes, and the area's rise since its growth began by
:data:`COMPLETION_RISE` standard errors of one spectrum's area (without them, noise in a slow
growth passed for a completion at 19-34 % crystalline on three ramps of ``foreign_ramps``).
Where a slope spans 1-2 spectra (a spectrum every ~4 C or more), one spectrum completes when the
common modes' growth has collapsed beyond doubt (:meth:`CompletionTracker.unmistakable`). On a
heating ramp, one spectrum also completes when both signals' growth curves, fitted with the
non-isothermal nucleation-and-growth form (:mod:`insitu.analysis.growth_curve`), put the film at
:data:`FITTED_FRACTION` of its final signal, two standard errors lower still at
:data:`FITTED_LOWER` (:meth:`CompletionTracker.fitted`): a slope over ``slope_span_C`` trails the
growth by half its span, the whole curve does not.

Everything here is in units of the areas' own errors; nothing is taken from a band model.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from insitu.analysis.growth_curve import fitted_fraction

__all__ = ["COMMON_MODES", "EVERY_BAND", "Completion", "CompletionTracker"]

# The two completion signals, by the name a flag's evidence gives them.
COMMON_MODES = "the area of the modes every crystalline phase has"
EVERY_BAND = "the area of every crystalline band"
# Temperature regimes: holding when the temperature moves by at most this much (C) from one
# spectrum to the next (see CompletionTracker.add) ...
HOLD_STEP_C = 0.5
# ... and in a hold, completion needs a growth of this many slope errors at constant temperature.
HOLD_GROWTH = 2.0
# The fall from the fastest growth, in standard errors of one slope, beyond the fastest's own
# selection bias, and the rise of the signal since its growth began, in standard errors of one
# spectrum's area (see CompletionTracker.saturated).
SLOPE_SIGNIFICANCE = 1.0
COMPLETION_RISE = 10.0
# Completion from one spectrum (see CompletionTracker.unmistakable): the growth fallen to this
# share of the fastest, by this many slope errors beyond the fastest's selection bias, where a
# slope spans at most this many spectra. raman_ramps 139 -> 141 of 150 ramps with every flag in
# window, foreign_ramps 20 -> 22 of 60 (completions in window 93 -> 95 and 25 -> 27), no flag
# later or earlier out of its window on either; on bench_raman_outside's settings (steps of 1-20
# C, 512-4096 pixels, fainter, brighter) one more film in window as drawn and every 5 C, no flag
# out of its window that was in it.
# Against the fastest growth instead of the second, early completions at 69-88 % crystalline
# (one spectrum off the curve makes one fast slope); without the span limit, early completions
# on dense ramps (1-3 C).
STRONG_SATURATION = 0.15
STRONG_SIGNIFICANCE = 2.0
STRONG_MAX_SPAN = 2
# Completion from the growth curve's fit (see CompletionTracker.fitted): both signals' fitted
# fraction at the present temperature at least FITTED_FRACTION, and FITTED_STANDARD_ERRORS
# standard errors lower still FITTED_LOWER.
# Measured by replaying the completion signals of 150 raman_ramps, 60 foreign_ramps and 50
# third_ramps films and 24 of the simulator's: completions in their window 95 -> 95, 30 -> 35,
# 30 -> 35 and 24 -> 24, none earlier than before (with the common modes alone, one third_ramps
# film 4 spectra early at 88 %: its common modes peak before the end as its tetragonal bands
# turn into weaker cubic ones); on bench_raman_outside's 592 ramps every flag as before. On
# raman_ramps the fit rarely speaks first: its films' signals go on growing after the fraction
# has stopped (a laser drifting up, cubic bands stronger than the tetragonal ones they replace).
# ... and only once the steepest growth is this many slopes back: one spectrum past it, a
# simulated film every 10 C (the beamline's own simulator, 73 % crystalline, its growth halved
# on the last step) read 96 % and completed a spectrum early; with 2 or 3 every replayed film
# above is where it was and that one in its window (3 kept, for margin).
FITTED_FRACTION = 0.95
FITTED_LOWER = 0.9
FITTED_PAST_FASTEST = 3
# The bound is tested on every spectrum from the bend of the curve on, so a chance low value of
# the last spectrum gets several tries: at 1 standard error a raman_ramps film under 10x its
# fluorescence (bench_raman_outside) read 98 % at 82 % crystalline, its last area 1-2 errors
# low; at 2 it waits (and one third_ramps completion comes a spectrum later, past its window).
FITTED_STANDARD_ERRORS = 2.0

Area = tuple[float, float]  # (area, standard error)
_UNMEASURED: Area = (math.nan, math.nan)


@dataclass(frozen=True)
class Completion:
    """A completion found: which signal stopped growing, and how.

    Attributes
    ----------
    signal : str
        :data:`COMMON_MODES` or :data:`EVERY_BAND`.
    slope, fastest : float
        The signal's last growth per spectrum, and the fastest seen.
    one_spectrum : bool
        Found on one spectrum (:meth:`CompletionTracker.unmistakable` or
        :meth:`CompletionTracker.fitted`), not on two.
    fraction, fraction_lower : float
        From the growth curves' fit: the smaller fitted fraction of the two signals, and its
        lower bound (:data:`FITTED_STANDARD_ERRORS` standard errors; NaN when the fit did not
        make the call).
    """

    signal: str
    slope: float
    fastest: float
    one_spectrum: bool
    fraction: float = math.nan
    fraction_lower: float = math.nan

    @property
    def fitted(self) -> bool:
        """Found from the growth curves' fit (:meth:`CompletionTracker.fitted`)."""
        return math.isfinite(self.fraction)

    def evidence(self, saturation: float) -> str:
        """The flag's evidence, in words."""
        if self.fitted:
            return (
                "the crystalline band signal has stopped growing (both signals' growth curves "
                f"fit a nucleation-and-growth curve at {self.fraction:.1%} of their final "
                f"signal, {FITTED_STANDARD_ERRORS:g} standard errors lower "
                f"{self.fraction_lower:.1%}; at least {FITTED_FRACTION:.0%} and "
                f"{FITTED_LOWER:.0%} needed): growth "
                f"{self.slope:.3g} per spectrum, the fastest {self.fastest:.3g}"
            )
        seen = (
            f"on one spectrum, below {STRONG_SATURATION:g} of the fastest and at the top of the "
            "growth"
            if self.one_spectrum
            else "on two consecutive spectra"
        )
        return (
            f"the crystalline band signal has stopped growing ({self.signal}): growth "
            f"{self.slope:.3g} per spectrum, at most {saturation:g} of the fastest "
            f"({self.fastest:.3g}), {seen}"
        )


@dataclass
class CompletionTracker:
    """The two completion signals of one ramp and whether their growth has stopped.

    Parameters
    ----------
    saturation : float
        The growth has fallen to this share of the fastest seen.
    slope_span_C : float
        Growth is measured over about this temperature span (at least one spectrum; one spectrum
        when the temperature does not change, as in an isothermal anneal).

    Attributes
    ----------
    growth : dict
        Signal name -> (area, error) per spectrum since the onset's evidence began (NaN where a
        spectrum was not tested).
    at : list of int
        The spectrum index of each value of ``growth``.
    """

    saturation: float
    slope_span_C: float
    growth: dict[str, list[Area]] = field(
        default_factory=lambda: {COMMON_MODES: [], EVERY_BAND: []}
    )
    at: list[int] = field(default_factory=list)
    _recorded: dict[str, list[Area]] = field(
        default_factory=lambda: {COMMON_MODES: [], EVERY_BAND: []}
    )
    _saturated: list[dict[str, bool]] = field(default_factory=list)  # per spectrum, per signal
    _regime_start: int = 0  # of the present temperature regime in growth
    _holding: bool | None = None

    def record(self, common: Area = _UNMEASURED, every: Area = _UNMEASURED) -> None:
        """Both areas of the next spectrum (NaN: a calibration spectrum or one not tested), kept
        until the onset so that the growth seen while its evidence built up counts."""
        self._recorded[COMMON_MODES].append(common)
        self._recorded[EVERY_BAND].append(every)

    def rerecord(self, index: int, common: Area, every: Area) -> None:
        """Replace both areas recorded for spectrum ``index`` (measured again, at other band
        positions)."""
        self._recorded[COMMON_MODES][index] = common
        self._recorded[EVERY_BAND][index] = every

    def begin(self, start: int, index: int) -> None:
        """The onset at spectrum ``index``: its evidence began at ``start``, and the growth since
        then is part of the transition."""
        common = self._recorded[COMMON_MODES]
        self.at = [k for k in range(start, index + 1) if math.isfinite(common[k][0])]
        self.growth = {name: [areas[k] for k in self.at] for name, areas in self._recorded.items()}

    def skip(self, temperature: float, temperatures: Sequence[float], index: int) -> None:
        """A spectrum not tested (an intensity jump) keeps its place in the growth: a slope
        across it is NaN, not one over more spectra than its span."""
        self.add(_UNMEASURED, _UNMEASURED, temperature, temperatures, index)
        self._saturated.append({})

    def add(
        self,
        common: Area,
        every: Area,
        temperature: float,
        temperatures: Sequence[float],
        index: int,
    ) -> None:
        """One more spectrum of both signals (``temperatures``: the ramp's earlier spectra), and
        the temperature regime it is in.

        In a hold (the temperature moving by at most ``HOLD_STEP_C`` per spectrum) a completion
        needs the film seen growing at constant temperature: a slope of ``HOLD_GROWTH`` standard
        errors since the hold began. When a ramp stops where the film only crystallizes that far
        (a growth limited by temperature), the growth stops with the heating, and read against
        the ramp's fastest that was a completion (12 of 12 raman_ramps films held at 45-63 %
        crystalline were called crystallized in the hold); a film that goes on crystallizing in
        the hold (an isothermal anneal) still completes against the whole growth's fastest.
        (Measuring the fall against the hold's own fastest growth instead made the simulator's
        720 C anneal, 90 % crystalline when its dwell began, complete 51 spectra late.)
        The regime changes at the first spectrum that says so (waiting for 3 in a row let stalls
        be called in a hold's first spectra).
        """
        previous = temperatures[-1] if len(temperatures) else temperature
        holding = abs(temperature - previous) <= HOLD_STEP_C
        if self._holding is not None and holding != self._holding:
            self._regime_start = len(self.growth[COMMON_MODES])
        self._holding = holding
        self.growth[COMMON_MODES].append(common)
        self.growth[EVERY_BAND].append(every)
        self.at.append(index)

    def check(
        self,
        common: Area,
        every: Area,
        temperature: float,
        temperatures: Sequence[float],
        index: int,
    ) -> Completion | None:
        """Add a spectrum (see :meth:`add`) and say whether the growth has stopped: either
        signal saturated (see :meth:`saturated`) on this spectrum and the one before, or the
        common modes' on this one beyond doubt (see :meth:`unmistakable`).

        Two signals, either enough: their bands differ (for LLZO the second adds the cubic 468
        cm-1 band to the common modes), so a conversion still running moves them differently
        and a faint film's growth stands out of the noise in one sooner. Measured on
        ``foreign_ramps``: a faint film whose common modes never rose 10 units of noise (1031)
        completes in its window, two others (1018, 1032) a spectrum sooner, in it.
        """
        self.add(common, every, temperature, temperatures, index)
        now = {name: self.saturated(growth, temperatures) for name, growth in self.growth.items()}
        before = self._saturated[-1] if self._saturated else {}
        self._saturated.append(now)
        # Each signal confirms itself: one's noise on one spectrum and the other's on the next
        # are no completion.
        confirmed = [name for name, is_on in now.items() if is_on and before.get(name)]
        if confirmed:
            name, one_spectrum = confirmed[0], False
        elif now[COMMON_MODES] and self.unmistakable(temperature, temperatures):
            name, one_spectrum = COMMON_MODES, True
        else:
            fit = self.fitted(temperature, temperatures)
            if fit is None:
                return None
            slopes, _ = self.slopes(self.growth[COMMON_MODES], temperatures)
            last = float(slopes[-1]) if slopes.size else math.nan
            fastest = float(np.nanmax(slopes)) if np.isfinite(slopes).any() else math.nan
            return Completion(COMMON_MODES, last, fastest, True, *fit)
        slopes, _ = self.slopes(self.growth[name], temperatures)
        return Completion(name, float(slopes[-1]), float(np.nanmax(slopes)), one_spectrum)

    def fitted(
        self, temperature: float, temperatures: Sequence[float]
    ) -> tuple[float, float] | None:
        """(fraction, lower bound) when both signals' growth curves, fitted with the
        nucleation-and-growth form (:func:`~insitu.analysis.growth_curve.fitted_fraction`), put
        the film at :data:`FITTED_FRACTION` and :data:`FITTED_STANDARD_ERRORS` standard errors
        lower still at :data:`FITTED_LOWER`; None otherwise.

        Only on a heating ramp: every spectrum of the growth a heating step (the form is one of
        temperature on a constant rate; in a hold or after a cool-down the fraction follows time,
        and the other two tests stand). Both signals, because each can stop short of the
        fraction: the common modes fall as a tetragonal film turns into a cubic one whose
        common bands are weaker (one third_ramps film 4 spectra early at 88 % on them alone).
        """
        previous = temperatures[-1] if len(temperatures) else temperature
        if temperature - previous <= HOLD_STEP_C:
            return None
        # The top of the curve must be in the data: its steepest growth at least
        # FITTED_PAST_FASTEST slopes back (and the fits, ~3 ms each, are left for the spectra
        # that may speak).
        slopes, _ = self.slopes(self.growth[COMMON_MODES], temperatures)
        finite = np.isfinite(slopes)
        if not finite.any() or not finite[-1]:
            return None
        if int(np.nanargmax(slopes)) > slopes.size - 1 - FITTED_PAST_FASTEST:
            return None
        on_ramp = np.asarray(
            [temperatures[k] if k < len(temperatures) else temperature for k in self.at],
            dtype=float,
        )
        found = []
        for name in (COMMON_MODES, EVERY_BAND):
            values = np.asarray([value for value, _ in self.growth[name]], dtype=float)
            errors = np.asarray([error for _, error in self.growth[name]], dtype=float)
            measured = np.isfinite(values) & np.isfinite(errors) & (errors > 0)
            if np.count_nonzero(measured) < 5 or not measured[-1]:
                return None
            if np.any(np.diff(on_ramp[measured]) <= HOLD_STEP_C):
                return None
            fit = fitted_fraction(on_ramp[measured], values[measured], errors[measured])
            if fit is None or fit.fraction < FITTED_FRACTION:
                return None
            lower = fit.lower(FITTED_STANDARD_ERRORS)
            if lower < FITTED_LOWER:
                return None
            found.append((fit.fraction, lower))
        return min(found)

    def slope_span(self, temperatures: Sequence[float]) -> int:
        """Spectra in one slope: about ``slope_span_C`` at the ramp's recent step, at least 1."""
        recent = np.asarray(temperatures[-10:], dtype=float)
        step = float(np.median(np.abs(np.diff(recent)))) if recent.size > 1 else 0.0
        return max(1, round(self.slope_span_C / step)) if step > 0.5 else 1

    def slopes(self, growth: list[Area], temperatures: Sequence[float]) -> tuple[np.ndarray, float]:
        """Growth per spectrum of a signal since the onset's evidence began, over about
        ``slope_span_C`` (at least one spectrum), and the standard error of one slope."""
        values = np.asarray([value for value, _ in growth], dtype=float)
        errors = np.asarray([error for _, error in growth], dtype=float)
        span = self.slope_span(temperatures)
        if values.size <= span:
            return np.zeros(0), math.nan
        sigma = float(np.nanmedian(errors)) if np.isfinite(errors).any() else math.nan
        error = math.sqrt(2.0) * sigma / span
        return (values[span:] - values[:-span]) / span, error

    def unmistakable(self, temperature: float, temperatures: Sequence[float]) -> bool:
        """A completion one spectrum shows beyond doubt in the common modes' growth, where a
        slope spans at most ``STRONG_MAX_SPAN`` spectra (a spectrum every ~4 C or more).

        There the second confirming spectrum costs a whole step, and films whose growth had
        already collapsed were flagged a spectrum past their window. Beyond the two-spectrum
        test's conditions (already met), the growth must have fallen to ``STRONG_SATURATION``
        of the fastest, by ``STRONG_SIGNIFICANCE`` standard errors beyond the fastest's
        selection bias, and the spectrum must be at the top of the growth (not below the last
        ``span`` values by more than its own error: a low outlier makes a small slope too). (A
        measured error, the larger of the fit's and the growth curve's own scatter about a
        local cubic, was tried besides: no flag changed on the wide probe, two foreign
        completions a spectrum later.)
        Where consecutive slopes share most of their spectra one spectrum confirms little, and
        allowed there, the same rule flagged completions early on dense ramps. And the slope's
        spectra must all be heating steps: back from a cool-down, the film has not grown since
        it left (a slope of nothing, at 63 % crystalline), and in a hold the two-spectrum test
        and its hold rule stand.
        """
        span = self.slope_span(temperatures)
        if span > STRONG_MAX_SPAN:
            return False
        recent = np.asarray([*temperatures[-span:], temperature], dtype=float)
        if recent.size <= span or not np.all(np.diff(recent) > HOLD_STEP_C):
            return False
        # ... each of them tested (a spectrum not tested, an intensity jump, inside the slope
        # leaves one spectrum's word on a growth that may have been fast across it).
        growth = self.growth[COMMON_MODES]
        last = growth[-(span + 1) :]
        if len(self.at) <= span or np.any(np.diff(self.at[-(span + 1) :]) != 1):
            return False
        if not all(math.isfinite(value) for value, _ in last):
            return False
        slopes, error = self.slopes(growth, temperatures)
        finite = np.isfinite(slopes)
        # The second fastest: one spectrum off the curve (a flat frame read as the film) makes
        # one slope of its own, and against it the next spectra's growth had "collapsed" at
        # 88 % crystalline.
        fastest = float(np.sort(slopes[finite])[-2])
        margin = STRONG_SIGNIFICANCE + math.sqrt(2.0 * math.log(np.count_nonzero(finite)))
        if slopes[-1] > STRONG_SATURATION * fastest:
            return False
        if math.isfinite(error) and fastest - slopes[-1] < margin * error:
            return False
        before = [value for value, _ in last[:-1]]
        return last[-1][0] >= max(before) - last[-1][1]

    def saturated(self, growth: list[Area], temperatures: Sequence[float]) -> bool:
        """Whether a signal's growth has saturated on its last spectrum."""
        # NaN slopes are those across a spectrum that was not tested (an intensity jump).
        slopes, error = self.slopes(growth, temperatures)
        finite = np.isfinite(slopes)
        if np.count_nonzero(finite) < 2 or not finite[-1]:
            return False
        fastest = float(np.nanmax(slopes))
        # The fall from the fastest growth must stand out of the slopes' noise: on a noisy
        # film one high spectrum made a "fastest" growth that the next slopes fell short of.
        # (the fastest of n noisy slopes is itself high by about sqrt(2 ln n) standard errors).
        margin = SLOPE_SIGNIFICANCE + math.sqrt(2.0 * math.log(np.count_nonzero(finite)))
        significant = not math.isfinite(error) or fastest - slopes[-1] >= margin * error
        # ... and the growth itself must: a film whose crystalline signal rose by a few units of
        # noise has no slope whose fall means anything (on foreign_ramps' faint 600 C films,
        # completion at 34 % crystalline). With this, the fall needs 1 standard error beyond the
        # bias, not 3 (which left 23 of 42 completions there late or missed: 19 in window, 27).
        values = np.asarray([value for value, _ in growth], dtype=float)
        early = values[: max(1, values.size // 2)]
        early = early[np.isfinite(early)]
        if early.size == 0:
            return False
        errors = np.asarray([e for _, e in growth], dtype=float)
        if not np.isfinite(errors).any():
            return False  # a signal with no band on the axis (an area of 0, no error)
        sigma = float(np.nanmedian(errors))
        risen = values[-1] - float(np.min(early))
        significant = significant and not risen < COMPLETION_RISE * sigma
        if self._holding:
            # In a hold the film must have been seen growing at constant temperature (see
            # add): a growth that stopped with the heating is a stall, not a completion.
            held = slopes[self._regime_start :]
            significant = significant and bool(np.any(held > HOLD_GROWTH * error))
        return (
            fastest > 0
            and slopes[-1] <= self.saturation * fastest
            and int(np.nanargmax(slopes)) < slopes.size - 1
            and significant
        )
