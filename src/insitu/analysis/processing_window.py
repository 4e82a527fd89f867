"""Map a film's processing window: which anneal (temperature, dwell) keeps it amorphous.

The agent of ``insitu optimize`` (issue 18). Each film is annealed once and comes back
*crystallized* (the live Raman flags saw crystals appear) or *amorphous*, with its conductivity
sigma(30 C). The boundary between the two falls as the dwell grows (isokinetic JMAK kinetics: a
longer dwell reaches the same transformed fraction at a lower temperature, nearly linearly in
ln(dwell) over 5-120 min). So the surrogate is a logistic model of P(crystallized) in
(temperature, ln dwell), fitted by scikit-learn, with a Laplace posterior for its uncertainty:
the boundary at a dwell is where P = 1/2, and its band is that line under the posterior.
A film counts as its call weighted by how clear the call was (its margin, in units of noise,
when the analysis gives one: :func:`~insitu.analysis.rest_call.rest_call`'s from the film at
rest after its anneal, or the live onset CUSUM's: :attr:`Sample.weight_crystallized`): the
agent puts films at the boundary, where a film measured twice can be called both ways, and a
bare label there moved the boundary by 10-14 C; weighted, by about one.

Why this surrogate and not a Gaussian-process classifier: ten binary labels cannot teach a GP its
length scales, and a GP does not know that the boundary is one line falling with dwell; the
two-feature logistic model does, and pins the line with a few samples at the ends of the dwell
range. scikit-learn is small beside Ax/BoTorch (no torch) and well kept.

Acquisition (level-set estimation): the next film goes to the dwell where the boundary is least
certain (its posterior band the widest), at the boundary's estimate there. Before the first
film of each kind is seen there is no boundary to fit: the agent bisects the anneal temperature
at the middle dwell.

:class:`ProcessingWindowAgent` speaks bluesky-adaptive's ``Optimizer`` protocol (``suggest``,
``ingest``, ``get_best_points``) and the tell/ask/report of its agents, so another agent can be
swapped in; :class:`GridAgent` is the paper's way (every temperature at every dwell) behind the
same interface.
"""

from __future__ import annotations

import abc
import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "ANNEAL_RANGE_C",
    "DWELL_RANGE_MIN",
    "REPORTED_DWELLS_MIN",
    "BoundaryEstimate",
    "GridAgent",
    "ProcessingWindowAgent",
    "Sample",
    "fit_boundary",
]

ANNEAL_RANGE_C = (500.0, 800.0)
DWELL_RANGE_MIN = (5.0, 120.0)
REPORTED_DWELLS_MIN = (5.0, 15.0, 30.0, 60.0, 120.0)
_T_CENTRE, _T_SCALE = 650.0, 50.0  # features in units where the fit is well conditioned
_DWELL_CENTRE_MIN = 20.0
_POSTERIOR_DRAWS = 4000
_PRIOR_C = 25.0  # inverse strength of the Gaussian prior on the weights (sklearn's C)
_MARGIN_SCALE = 2.0  # noise units: see Sample.weight_crystallized


@dataclass(frozen=True)
class Sample:
    """One annealed film: where it was annealed and what it showed."""

    anneal_C: float
    dwell_min: float
    crystallized: bool
    sigma_30C_S_cm: float = math.nan
    crystallization_margin: float = math.nan  # how clear the call was (noise units), if known

    def as_dict(self) -> dict:
        return {
            "anneal_C": self.anneal_C,
            "dwell_min": self.dwell_min,
            "crystallized": self.crystallized,
            "sigma_30C_S_cm": self.sigma_30C_S_cm,
            "crystallization_margin": self.crystallization_margin,
        }

    @property
    def weight_crystallized(self) -> float:
        """The weight of this film as a crystallized one in the boundary's fit (0 to 1).

        A film called by a wide margin counts as its call; a film whose evidence ended within a
        few units of noise of the call's level (where the agent puts its films) counts as partly
        both, so that the same film measured again (other noise) moves the boundary by a fraction
        of a degree instead of flipping it (issue 18: a flipped call moved a boundary by 14 C).
        The scale, 2 units of noise, is twice the scatter of the rest call's Welch t (and the
        onset CUSUM's own scatter near its threshold, a sum of 2-4 spectra of unit noise): films
        of one crystalline fraction gave t 4.4 and 6.1 (2.4 %), 8.2 and 12.3 (5 %). A film
        without a margin counts as its call.
        """
        margin = self.crystallization_margin
        if not math.isfinite(margin):
            return float(self.crystallized)
        return 0.5 * math.erfc(-margin / (_MARGIN_SCALE * math.sqrt(2.0)))


@dataclass(frozen=True)
class BoundaryEstimate:
    """The highest amorphous anneal temperature at one dwell, with its 68 % band (C)."""

    dwell_min: float
    anneal_C: float
    low_C: float
    high_C: float

    @property
    def width_C(self) -> float:
        return self.high_C - self.low_C


def _features(anneal_C, dwell_min) -> np.ndarray:
    anneal_C = np.atleast_1d(np.asarray(anneal_C, dtype=float))
    dwell_min = np.atleast_1d(np.asarray(dwell_min, dtype=float))
    return np.column_stack(
        [(anneal_C - _T_CENTRE) / _T_SCALE, np.log(dwell_min / _DWELL_CENTRE_MIN)]
    )


@dataclass
class _Posterior:
    mean: np.ndarray  # (intercept, w_T, w_lndwell)
    draws: np.ndarray  # posterior draws of the same, (n, 3)

    def boundary(self, dwell_min: float) -> BoundaryEstimate:
        ell = math.log(dwell_min / _DWELL_CENTRE_MIN)
        low_T, high_T = ANNEAL_RANGE_C[0] - 100.0, ANNEAL_RANGE_C[1] + 100.0

        def at(w):
            w = np.atleast_2d(w)
            with np.errstate(divide="ignore", invalid="ignore"):
                x = -(w[:, 0] + w[:, 2] * ell) / w[:, 1]
            x = np.where(w[:, 1] > 0, x, np.nan)  # hotter must be more crystalline
            return np.clip(_T_CENTRE + _T_SCALE * x, low_T, high_T)

        samples = at(self.draws)
        samples = samples[np.isfinite(samples)]
        centre = float(at(self.mean)[0])
        if not np.isfinite(centre) or samples.size < 10:
            return BoundaryEstimate(dwell_min, math.nan, low_T, high_T)
        low, high = np.percentile(samples, [16.0, 84.0])
        return BoundaryEstimate(dwell_min, centre, float(low), float(high))

    def probability(self, anneal_C: float, dwell_min: float) -> float:
        x = np.concatenate([[1.0], _features(anneal_C, dwell_min)[0]])
        return float(1.0 / (1.0 + math.exp(-float(x @ self.mean))))


def fit_boundary(samples: Sequence[Sample], *, seed: int = 0) -> _Posterior | None:
    """The logistic model's posterior given ``samples``; None until both kinds are seen.

    The boundary falls (or stays) as the dwell grows: a fit that says otherwise (few, noisy
    labels) is refitted with the dwell left out (a flat boundary).
    """
    from sklearn.linear_model import LogisticRegression  # noqa: PLC0415 (heavy import)

    labels = np.array([s.crystallized for s in samples], dtype=int)
    if len(samples) < 2 or labels.min() == labels.max():
        return None
    x = _features([s.anneal_C for s in samples], [s.dwell_min for s in samples])
    # Soft labels (Sample.weight_crystallized): each film once as crystallized, once as
    # amorphous, weighted; a film called by a wide margin has all its weight on its call.
    crystallized = np.array([s.weight_crystallized for s in samples])
    doubled = np.vstack([x, x])
    targets = np.concatenate([np.ones(len(x), dtype=int), np.zeros(len(x), dtype=int)])
    sample_weight = np.concatenate([crystallized, 1.0 - crystallized])
    model = LogisticRegression(C=_PRIOR_C).fit(doubled, targets, sample_weight=sample_weight)
    weights = np.concatenate([model.intercept_, model.coef_[0]])
    if weights[2] < 0:  # crystallizes less with a longer dwell: not physical, refit flat
        flat = LogisticRegression(C=_PRIOR_C).fit(
            doubled[:, :1], targets, sample_weight=sample_weight
        )
        weights = np.array([flat.intercept_[0], flat.coef_[0][0], 0.0])
    # Laplace: the posterior's covariance is the inverse Hessian of the penalized likelihood.
    design = np.column_stack([np.ones(len(x)), x])
    p = 1.0 / (1.0 + np.exp(-(design @ weights)))
    hessian = design.T @ (design * (p * (1 - p))[:, None]) + np.diag([1e-3, 1.0, 1.0]) / _PRIOR_C
    covariance = np.linalg.inv(hessian)
    # A flat refit keeps the slope's uncertainty (the draws of a rising boundary are dropped:
    # a truncated posterior, not a point mass on a flat boundary). With it zeroed, every dwell's
    # band was as narrow as the measured ones', and the agent left a -20 C film's 30-120 min
    # dwells unvisited (all 10 films at 5-15 min; 21 C off at 120 min).
    rng = np.random.default_rng(seed)
    draws = rng.multivariate_normal(weights, covariance, size=_POSTERIOR_DRAWS)
    draws = draws[draws[:, 2] >= 0.0]
    return _Posterior(weights, draws)


@dataclass
class _AgentBase(abc.ABC):
    """What both agents share: the samples told, the boundary fitted, the report."""

    seed: int = 0
    samples: list[Sample] = field(default_factory=list)
    decisions: list[dict] = field(default_factory=list)

    # --- bluesky-adaptive's Optimizer protocol -------------------------------------------
    def suggest(self, num_points: int | None = None) -> list[dict]:
        """The next ``num_points`` (default 1) anneals: ``anneal_C``, ``dwell_min``, ``_id``."""
        return [self.ask() for _ in range(num_points or 1)]

    def ingest(self, points: Sequence[Mapping]) -> None:
        """Outcomes: each with ``anneal_C``, ``dwell_min``, ``crystallized``, ``sigma_30C_S_cm``
        and, if known, ``crystallization_margin``."""
        for point in points:
            self.tell(
                Sample(
                    float(point["anneal_C"]),
                    float(point["dwell_min"]),
                    bool(point["crystallized"]),
                    float(point.get("sigma_30C_S_cm", math.nan)),
                    float(point.get("crystallization_margin", math.nan)),
                )
            )

    def get_best_points(self) -> list[tuple]:
        """The best amorphous film so far: ``[(_id, parameters, outcome)]`` (empty if none)."""
        best = self.best_amorphous()
        if best is None:
            return []
        index = self.samples.index(best)
        return [(index, {"anneal_C": best.anneal_C, "dwell_min": best.dwell_min}, best.as_dict())]

    # --- tell / ask / report ---------------------------------------------------------------
    def tell(self, sample: Sample) -> None:
        """Add one measured film."""
        self.samples.append(sample)

    @abc.abstractmethod
    def ask(self) -> dict:
        """The next anneal: ``{"_id", "anneal_C", "dwell_min", "reason", ...}``."""

    def posterior(self) -> _Posterior | None:
        return fit_boundary(self.samples, seed=self.seed)

    def boundary(self, dwells_min: Iterable[float] = REPORTED_DWELLS_MIN) -> list[BoundaryEstimate]:
        """The estimated highest amorphous anneal temperature at each dwell.

        Before both kinds of film are seen the estimate is the bracket the films give: between
        the hottest amorphous and the coldest crystallized anneal (NaN when open-ended).
        """
        posterior = self.posterior()
        if posterior is not None:
            return [posterior.boundary(d) for d in dwells_min]
        amorphous = [s.anneal_C for s in self.samples if not s.crystallized]
        crystallized = [s.anneal_C for s in self.samples if s.crystallized]
        low = max(amorphous, default=math.nan)
        high = min(crystallized, default=math.nan)
        return [BoundaryEstimate(d, math.nan, low, high) for d in dwells_min]

    def best_amorphous(self) -> Sample | None:
        """The amorphous film with the highest measured sigma(30 C), if any."""
        films = [s for s in self.samples if not s.crystallized and np.isfinite(s.sigma_30C_S_cm)]
        return max(films, key=lambda s: s.sigma_30C_S_cm, default=None)

    def report(self) -> dict:
        """Boundary, best amorphous film, samples and decisions, as JSON-able data."""
        best = self.best_amorphous()
        return {
            "boundary": [
                {
                    "dwell_min": b.dwell_min,
                    "anneal_C": None if not np.isfinite(b.anneal_C) else round(b.anneal_C, 2),
                    "low_C": None if not np.isfinite(b.low_C) else round(b.low_C, 2),
                    "high_C": None if not np.isfinite(b.high_C) else round(b.high_C, 2),
                }
                for b in self.boundary()
            ],
            "best_amorphous": None
            if best is None
            else {
                "anneal_C": best.anneal_C,
                "dwell_min": best.dwell_min,
                "sigma_30C_S_cm": best.sigma_30C_S_cm,
            },
            "samples": [s.as_dict() for s in self.samples],
            "decisions": list(self.decisions),
        }

    def _decide(self, anneal_C: float, dwell_min: float, reason: str, **why) -> dict:
        posterior = self.posterior()
        decision = {
            "_id": len(self.decisions),
            "anneal_C": round(float(anneal_C), 1),
            "dwell_min": float(dwell_min),
            "reason": reason,
            "predicted_crystallized_probability": None
            if posterior is None
            else round(posterior.probability(anneal_C, dwell_min), 4),
            **why,
        }
        self.decisions.append(decision)
        return decision


@dataclass
class ProcessingWindowAgent(_AgentBase):
    """Level-set estimation of the amorphous/crystalline boundary (see the module docstring).

    Parameters
    ----------
    seed : int
        Seeds the posterior draws (the agent is deterministic given its samples and seed).
    """

    def ask(self) -> dict:
        """The next anneal: ``{"_id", "anneal_C", "dwell_min", "reason", ...}``."""
        posterior = self.posterior()
        if posterior is None:
            return self._bisect()
        estimates = posterior.boundary
        candidates = sorted(
            (estimates(d) for d in REPORTED_DWELLS_MIN), key=lambda b: b.width_C, reverse=True
        )
        for estimate in candidates:
            anneal_C = float(np.clip(round(estimate.anneal_C, 1), *ANNEAL_RANGE_C))
            if not np.isfinite(estimate.anneal_C):
                continue
            repeated = any(
                abs(s.anneal_C - anneal_C) < 2.0 and s.dwell_min == estimate.dwell_min
                for s in self.samples
            )
            if not repeated:
                return self._decide(
                    anneal_C,
                    estimate.dwell_min,
                    "level set: the boundary is least certain at this dwell",
                    boundary_C=round(estimate.anneal_C, 2),
                    boundary_band_C=[round(estimate.low_C, 2), round(estimate.high_C, 2)],
                    acquisition_width_C=round(estimate.width_C, 2),
                )
        widest = candidates[0]
        return self._decide(
            float(
                np.clip(widest.anneal_C if np.isfinite(widest.anneal_C) else 650.0, *ANNEAL_RANGE_C)
            ),
            widest.dwell_min,
            "level set: every dwell's estimate already measured; the widest band again",
            acquisition_width_C=round(widest.width_C, 2),
        )

    def _bisect(self) -> dict:
        dwell = _DWELL_CENTRE_MIN
        amorphous = [s.anneal_C for s in self.samples if not s.crystallized]
        crystallized = [s.anneal_C for s in self.samples if s.crystallized]
        low = max(amorphous, default=ANNEAL_RANGE_C[0])
        high = min(crystallized, default=ANNEAL_RANGE_C[1])
        if not self.samples:
            anneal_C = 0.5 * sum(ANNEAL_RANGE_C)
        else:
            anneal_C = 0.5 * (low + high)
        return self._decide(
            anneal_C,
            dwell,
            "bisection: no film of each kind yet, so no boundary to fit",
            bracket_C=[low, high],
        )


@dataclass
class GridAgent(_AgentBase):
    """The paper's way: every anneal temperature at every dwell, in order.

    The boundary is estimated from the grid's films with the same model as the agent's.
    """

    anneals_C: Sequence[float] = (500.0, 600.0, 650.0, 750.0)
    dwells_min: Sequence[float] = (15.0,)

    def ask(self) -> dict:
        grid = list(itertools.product(self.dwells_min, self.anneals_C))
        dwell, anneal_C = grid[len(self.decisions) % len(grid)]
        return self._decide(anneal_C, dwell, "grid: the next point of the grid")
