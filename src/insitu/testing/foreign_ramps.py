"""A second in-situ Raman ramp generator, written without reading this project's others.

:mod:`insitu.testing.raman_ramps` was written beside the detector; this one was written by a
helper who saw neither it nor :mod:`insitu.sim`, only the paper's band positions, and made its
own choices everywhere else, so that the detector's robustness is also measured on spectra no
one tuned it on:

* garnet bands pure Gaussian or pure Lorentzian per film (areas kept as they broaden), widths
  6-30 cm-1, extra width while the crystallites are small; pyrochlore bands Gaussian, 30-90 cm-1;
* softening 0.01-0.03 cm-1/C (less below 300 cm-1), thermal broadening, the Stokes
  Bose-Einstein factor on every Raman contribution;
* an amorphous spectrum of a boson-peak-like low-wavenumber feature and 2-4 Gaussian humps
  60-300 cm-1 wide that soften and relax slowly;
* two fluorescence components (broad Gaussian, power law or exponential) bleaching at different
  rates, 1-10x the strongest crystalline band;
* non-isothermal JMAK crystallization (Avrami exponent 1-3, activation energy 1.5-4 eV), half
  the films tetragonal first and then cubic; decomposition to pyrochlore from 780-840 C, after
  the film is over 99 % crystalline;
* Poisson noise on signal and dark current, bias, read noise, 0-3 cosmic rays of 1-4 pixels,
  smooth laser drift within +/-10 %; 1000-2000 pixels from 50-150 to 1000-1600 cm-1 with a
  calibration offset of up to 2 cm-1; a spectrum every 2, 5 or 10 C.

:func:`foreign_ramp` renders one seeded ramp as a :class:`~insitu.testing.raman_ramps.RenderedRamp`
(judged with the same windows, :func:`~insitu.testing.raman_ramps.judge`).
"""

from __future__ import annotations

import numpy as np

from insitu.testing.evidence import matched_filter
from insitu.testing.raman_ramps import RenderedRamp

__all__ = ["foreign_ramp", "draw_foreign_film", "foreign_evidence"]

KB_CM = 0.6950348  # Boltzmann constant, cm-1/K
KB_EV = 8.617333e-5  # eV/K
TETRAGONAL = {"T_ref": 650.0, "bands": [389.0, 656.0]}
CUBIC = {"T_ref": 750.0, "bands": [94.0, 113.0, 240.0, 368.0, 468.0, 651.0]}
PYROCHLORE = {"T_ref": 850.0, "bands": [275.0, 374.0, 491.0]}


def _bose(nu, temperature, reference=25.0):
    """Stokes factor n + 1 at ``temperature`` relative to ``reference`` (C)."""
    nu = np.maximum(np.asarray(nu, float), 1.0)

    def factor(t):
        return 1.0 / (1.0 - np.exp(-nu / (KB_CM * (t + 273.15))))

    return factor(temperature) / factor(reference)


def _shape(x, centre, width, kind):
    if kind == "gauss":
        return np.exp(-4.0 * np.log(2.0) * ((x - centre) / width) ** 2)
    return 1.0 / (1.0 + ((x - centre) / (0.5 * width)) ** 2)


def _jmak(temperature, t50, energy_ev, avrami):
    """Crystalline fraction on a constant-rate ramp (JMAK with an Arrhenius rate)."""
    grid = np.linspace(20.0, 900.0, 8801)
    rate = np.exp(-energy_ev / KB_EV * (1.0 / (grid + 273.15) - 1.0 / (t50 + 273.15)))
    integral = np.concatenate([[0.0], np.cumsum(0.5 * (rate[1:] + rate[:-1]) * np.diff(grid))])
    scale = np.log(2.0) ** (1.0 / avrami) / np.interp(t50, grid, integral)
    return np.interp(temperature, grid, 1.0 - np.exp(-((scale * integral) ** avrami)))


def draw_foreign_film(seed: int, end_C: float = 850.0) -> dict:
    """The film-and-instrument variation of one seed (a dict of parameters)."""
    rng = np.random.default_rng(seed)
    p: dict = {"seed": seed, "t_end": float(end_C)}
    p["step"] = float(rng.choice([2.0, 5.0, 10.0]))
    p["n_pix"] = int(rng.integers(1000, 2001))
    p["x_lo"], p["x_hi"] = float(rng.uniform(50, 150)), float(rng.uniform(1000, 1600))
    p["cal_offset"] = float(rng.uniform(-2, 2))
    p["peak"] = float(np.exp(rng.uniform(np.log(300), np.log(5000))))
    p["line"] = str(rng.choice(["gauss", "lorentz"]))
    p["k_soft"] = float(rng.uniform(0.01, 0.03))
    p["b_broad"] = float(rng.uniform(1e-4, 5e-4))
    p["w_size"] = float(rng.uniform(0.0, 15.0))
    cub_h = rng.uniform(0.15, 1.0, len(CUBIC["bands"]))
    p["cub_h"] = cub_h / cub_h.max()
    p["cub_w"] = rng.uniform(6.0, 30.0, len(CUBIC["bands"]))
    tet_h = rng.uniform(0.3, 1.0, len(TETRAGONAL["bands"]))
    p["tet_h"] = tet_h / tet_h.max() * rng.uniform(0.5, 1.2)
    p["tet_w"] = rng.uniform(6.0, 30.0, len(TETRAGONAL["bands"]))
    p["pyr_h"] = rng.uniform(0.3, 1.0, len(PYROCHLORE["bands"]))
    p["pyr_w"] = rng.uniform(30.0, 90.0, len(PYROCHLORE["bands"]))
    p["pyr_scale"] = float(rng.uniform(0.3, 1.2))
    humps = int(rng.integers(2, 5))
    p["am_c"] = np.sort(rng.uniform(150, 900, humps))
    p["am_w"] = rng.uniform(60, 300, humps)
    p["am_h"] = rng.uniform(0.2, 1.0, humps)
    p["am_drift"] = rng.uniform(-0.3, 0.3, humps)
    p["am_relax_T"], p["am_relax_w"] = float(rng.uniform(350, 600)), float(rng.uniform(80, 150))
    p["am_relax_a"] = rng.uniform(-0.3, 0.3, humps)
    p["boson_nu"], p["boson_h"] = float(rng.uniform(30, 70)), float(rng.uniform(0.3, 1.5))
    p["am_level"] = float(rng.uniform(0.05, 0.4))
    p["fl_ratio"] = float(np.exp(rng.uniform(0.0, np.log(10.0))))
    p["fl_kinds"] = [str(k) for k in rng.choice(["gauss", "power", "exp"], 2)]
    p["fl_par"] = [
        (
            float(rng.uniform(-500, 2500)),
            float(rng.uniform(500, 2000)),
            float(rng.uniform(-1, 1.5)),
            float(rng.uniform(200, 1500)),
        )
        for _ in range(2)
    ]
    p["fl_mix"] = float(rng.uniform(0.2, 0.8))
    p["fl_Tf"] = [float(rng.uniform(150, 600)), float(rng.uniform(300, 1500))]
    p["fl_floor"] = [float(rng.uniform(0.1, 0.6)), float(rng.uniform(0.3, 0.9))]
    p["dark"], p["bias"] = float(rng.uniform(2, 40)), float(rng.uniform(100, 600))
    p["read"], p["laser_amp"] = float(rng.uniform(3, 15)), float(rng.uniform(0.0, 0.1))
    p["n_avrami"], p["E_eV"] = float(rng.uniform(1.0, 3.0)), float(rng.uniform(1.5, 4.0))
    p["tet_first"] = bool(rng.random() < 0.5)
    p["tc_delay"], p["tc_w"] = float(rng.uniform(20, 90)), float(rng.uniform(8, 30))
    if end_C > 700:
        p["Td"], p["pmax"] = float(rng.uniform(780, 840)), float(rng.uniform(0.3, 0.9))
        p["tau"] = float(rng.uniform(15, 50))
        for _ in range(1000):
            p["T50"] = float(rng.uniform(580, 740))
            if _jmak(p["Td"], p["T50"], p["E_eV"], p["n_avrami"]) > 0.995:
                break
            p["E_eV"], p["n_avrami"] = float(rng.uniform(1.5, 4.0)), float(rng.uniform(1.0, 3.0))
    else:
        p["Td"], p["pmax"], p["tau"] = 1e9, 0.0, 1.0
        p["T50"] = float(rng.uniform(540, 640) if rng.random() < 0.5 else rng.uniform(700, 780))
    # The same mode in both polymorphs (O-Li-O 389/368, O-Zr-O A1g 656/651): the tetragonal
    # band's integrated intensity within 0.6-1.6x the cubic one's.
    ratio = rng.uniform(0.6, 1.6, 2)
    for k_t, k_c, r in ((0, 3, ratio[0]), (1, 5, ratio[1])):
        p["tet_h"][k_t] = r * p["cub_h"][k_c] * p["cub_w"][k_c] / p["tet_w"][k_t]
    return p


def _fractions(p: dict, temperature: np.ndarray) -> dict:
    crystallized = _jmak(temperature, p["T50"], p["E_eV"], p["n_avrami"])
    if p["tet_first"]:
        cubic = 1.0 / (1.0 + np.exp(-(temperature - (p["T50"] + p["tc_delay"])) / p["tc_w"]))
    else:
        cubic = np.ones_like(temperature)
    lost = np.where(
        temperature > p["Td"],
        p["pmax"] * (1 - np.exp(-(((temperature - p["Td"]) / p["tau"]) ** 2))),
        0.0,
    )
    garnet = crystallized * (1 - lost)
    return {
        "amorphous": 1 - crystallized,
        "tetragonal": garnet * (1 - cubic),
        "cubic": garnet * cubic,
        "pyrochlore": crystallized * lost,
        "crystallized": crystallized,
    }


def _fluorescence_shape(x, kind, par):
    centre, sigma, power, decay = par
    if kind == "gauss":
        y = np.exp(-0.5 * ((x - centre) / sigma) ** 2)
    elif kind == "power":
        y = (x / 500.0) ** power
    else:
        y = np.exp(-(x - x[0]) / decay)
    return y / y.mean()


def _bands(x, temperature, phase, heights, widths, p, kind, extra_width=0.0):
    y = np.zeros_like(x)
    for nu0, height, width0 in zip(phase["bands"], heights, widths, strict=True):
        shift = p["k_soft"] * min(1.0, nu0 / 300.0) * (temperature - phase["T_ref"])
        width = width0 * (1 + p["b_broad"] * (temperature - phase["T_ref"])) + extra_width
        amplitude = height * width0 / width * _bose(nu0, temperature, phase["T_ref"])
        y += amplitude * _shape(x, nu0 - shift, width, kind)
    return y


def _amorphous(x, temperature, p):
    y = p["boson_h"] * (x / p["boson_nu"]) * np.exp(1 - x / p["boson_nu"])
    relax = 1.0 / (1.0 + np.exp(-(temperature - p["am_relax_T"]) / p["am_relax_w"]))
    for c, w, h, drift, r in zip(
        p["am_c"], p["am_w"], p["am_h"], p["am_drift"], p["am_relax_a"], strict=True
    ):
        height = h * (1 + drift * (temperature - 25.0) / 825.0 + r * relax)
        y += height * np.exp(-4 * np.log(2) * ((x - (c - 0.02 * (temperature - 25.0))) / w) ** 2)
    return y * _bose(x, temperature)


def _laser(seed: int, n_spectra: int, amplitude: float) -> tuple[np.random.Generator, np.ndarray]:
    """The ramp's noise generator and its smooth laser-power factor per spectrum."""
    rng = np.random.default_rng(seed + 10_000_019)
    phases = rng.uniform(0, 2 * np.pi, 3)
    periods = rng.uniform(20, 200, 3)
    index = np.arange(n_spectra)
    wave = sum(
        np.sin(2 * np.pi * index / period + phase)
        for period, phase in zip(periods, phases, strict=True)
    )
    return rng, 1 + amplitude * wave / max(np.abs(wave).max(), 1e-9)


def _expected(p: dict, temperatures, x, laser, fractions: dict) -> np.ndarray:
    """Expected counts (before bias and read noise) of every spectrum for given phase fractions."""
    shapes = [
        _fluorescence_shape(x, k, par) for k, par in zip(p["fl_kinds"], p["fl_par"], strict=True)
    ]
    expected = np.empty((temperatures.size, x.size))
    for i, t in enumerate(temperatures):
        size = p["w_size"] * (1 - fractions["crystallized"][i])
        raman = fractions["cubic"][i] * _bands(
            x, t, CUBIC, p["cub_h"], p["cub_w"], p, p["line"], size
        )
        raman += fractions["tetragonal"][i] * _bands(
            x, t, TETRAGONAL, p["tet_h"], p["tet_w"], p, p["line"], size
        )
        raman += (
            fractions["pyrochlore"][i]
            * p["pyr_scale"]
            * _bands(x, t, PYROCHLORE, p["pyr_h"], p["pyr_w"], p, "gauss")
        )
        raman += fractions["amorphous"][i] * p["am_level"] * _amorphous(x, t, p)
        fluorescence = 0.0
        for k in range(2):
            mix = p["fl_mix"] if k == 0 else 1 - p["fl_mix"]
            floor = p["fl_floor"][k]
            bleach = floor + (1 - floor) * np.exp(-(t - 25.0) / p["fl_Tf"][k])
            fluorescence = fluorescence + mix * bleach * shapes[k]
        expected[i] = laser[i] * p["peak"] * (raman + p["fl_ratio"] * fluorescence) + p["dark"]
    return expected


def _setup(seed: int, end_C: float):
    p = draw_foreign_film(seed, end_C)
    temperatures = np.arange(25.0, p["t_end"] + 1e-9, p["step"])
    axis = np.linspace(p["x_lo"], p["x_hi"], p["n_pix"])
    x = axis + p["cal_offset"]  # the true Raman shift of each reported pixel
    rng, laser = _laser(seed, temperatures.size, p["laser_amp"])
    return p, temperatures, axis, x, rng, laser


def foreign_ramp(seed: int, end_C: float = 850.0) -> RenderedRamp:
    """Render one seeded ramp from 25 C to ``end_C`` (deterministic for a seed and end)."""
    p, temperatures, axis, x, rng, laser = _setup(seed, end_C)
    fractions = _fractions(p, temperatures)
    expected = _expected(p, temperatures, x, laser, fractions)
    counts = np.empty_like(expected)
    for i in range(temperatures.size):
        y = rng.poisson(expected[i]).astype(float) + p["bias"]
        y += rng.normal(0, p["read"], p["n_pix"])
        for _ in range(int(rng.choice(4, p=[0.45, 0.3, 0.15, 0.1]))):
            width = int(rng.integers(1, 5))
            j = int(rng.integers(0, p["n_pix"] - width))
            y[j : j + width] += np.exp(rng.uniform(np.log(100), np.log(5000))) * rng.uniform(
                0.3, 1, width
            )
        counts[i] = y
    return RenderedRamp(
        temperatures,
        axis,
        counts,
        fractions["tetragonal"] + fractions["cubic"],
        fractions["pyrochlore"],
    )


def foreign_evidence(
    seed: int, end_C: float = 850.0, *, background_knots_cm1: float | None = None
) -> dict[str, np.ndarray]:
    """What the bands of each transition's new phase carry, in each spectrum of a ramp.

    For the onset, the garnet bands (tetragonal and cubic) as the film shows them; for the
    decomposition, the pyrochlore bands: the matched-filter signal-to-noise ratio of those bands
    alone, ``sqrt(sum(bands**2 / variance))`` over the pixels, with the true variance (shot
    noise of the expected counts and read noise). It knows every shape, the background and the
    rest of the spectrum exactly, so no detector that works from the new phase's bands (as the
    transition detector does) sees more: a bound, not a target. Keys ``crystallization_onset``
    and ``decomposition``; one value per spectrum (noise units).

    With ``background_knots_cm1``, the bound of a detector that must also fit an unknown smooth
    background (cubic B-splines with knots that far apart over the axis, as every detector that
    knows no fluorescence shape does): only the part of the bands no such background can mimic
    counts (the noise-weighted residual of the bands after their least-squares projection onto
    the splines). Broad bands lose most: the pyrochlore's, 30-90 cm-1 wide, about half.
    """
    p, temperatures, axis, x, _, laser = _setup(seed, end_C)
    fractions = _fractions(p, temperatures)
    expected = _expected(p, temperatures, x, laser, fractions)
    variance = expected + p["read"] ** 2
    zero = np.zeros_like(temperatures)
    nothing = {
        "amorphous": zero,
        "tetragonal": zero,
        "cubic": zero,
        "pyrochlore": zero,
        "crystallized": fractions["crystallized"],
    }
    without = _expected(p, temperatures, x, laser, nothing)
    phases = {
        "crystallization_onset": dict(
            nothing, tetragonal=fractions["tetragonal"], cubic=fractions["cubic"]
        ),
        "decomposition": dict(nothing, pyrochlore=fractions["pyrochlore"]),
    }
    return {
        kind: matched_filter(
            _expected(p, temperatures, x, laser, alone) - without,
            variance,
            axis,
            background_knots_cm1,
        )
        for kind, alone in phases.items()
    }
