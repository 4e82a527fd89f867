"""A third in-situ Raman ramp generator, written independently of this project's other two.

It was written by a helper who saw neither the detector, nor the simulator (:mod:`insitu.sim`),
nor the other generators (:mod:`insitu.testing.raman_ramps`,
:mod:`insitu.testing.foreign_ramps`), only the paper's band positions (its table, in
``shared/reference/science.md`` beside the project), which it reads as room-temperature
positions that soften from 25 C; every other choice is its own:

* one line shape per film for the garnet bands: Lorentzian (15 %), pseudo-Voigt with a
  Lorentzian share of 0.2-0.9 (35 %), Breit-Wigner-Fano with q from -5 to -20 (20 %) or
  Richter-Wang-Ley phonon confinement in crystallites growing from 5 nm to 10-40 nm
  (lattice 1.3 nm, dispersion 4 % of the band position) (30 %); pyrochlore bands pseudo-Voigt
  (half Lorentzian);
* widths (FWHM) 5-35 cm-1 cubic, 8-35 cm-1 tetragonal, 15-35 cm-1 pyrochlore, 10-60 % wider
  per 800 C; softening 0.01-0.03 cm-1/C (pyrochlore 0.6x); the Stokes Bose-Einstein factor,
  normalised to 25 C, on every band;
* intensities: the strongest cubic band 100-5000 counts (log-uniform), the paper's band
  pattern times 0.3-3 per band, tetragonal 0.5-1.2x and pyrochlore 0.3-1.5x that;
* amorphous humps (Gaussian, scaled by the amorphous fraction, 0.4-1.6x, softening half as
  fast): 91 cm-1 (35-70 wide) growing near 330 C, 143 cm-1 (60-110 wide) appearing near
  540 C, 210 +/- 15 (50-90 wide) and 430 +/- 40 (150-260 wide) flat, 700 +/- 40 (120-220
  wide) fading by 30 % near 500 C, each 2-30 % of the strongest band;
* fluorescence 1-20x the strongest band, a flat half plus a Gaussian 1200-3500 cm-1 wide
  centred at 1200-4000 cm-1, bleaching with a 10-150 min time constant to a floor of 5-60 %;
  in 40 % of the films an organic burn-off at 300-450 C down to a quarter;
* in half the films a blackbody glow (Planck at the Stokes wavelength of 532 nm) of 0-2x the
  strongest band at 850 C and 1500 cm-1;
* in 45 % of the films a Si substrate: 520 cm-1 Lorentzian 3.5-6 cm-1 wide, 0.3-6x the
  strongest band, softening 0.022 cm-1/C (plus 1.2e-5 cm-1/C^2), 80 % wider and 30 % weaker
  per 800 C, with second-order humps at 970 (2TO, 8 % of it) and 300 cm-1 (2TA, 4 %);
* in 35 % of the films an etalon of 3-15 % with a period of 15-80 pixels (chirped by 15 %);
  in half an edge filter (logistic, 6 cm-1) 5-40 cm-1 above the axis start; a response tilt
  of up to 30 % across the axis with a 5 % ripple;
* detector: Poisson noise, bias 100-1000 counts, read noise 3-15 counts, counts rounded;
  cosmic rays (0.1-2 per spectrum on average) of 1-3 pixels, 200-20000 counts (log-uniform)
  times 0.3-1 per pixel; laser power drifting (AR(1), 0.97) within +/-3-15 %;
* 1000-2048 pixels from 80-200 to 900-1500 cm-1, a quadratic axis nonlinearity (a bow of up to
  1 % of the span), a calibration offset of 0.5-5 cm-1 either way and a drift of up to +/-2 cm-1
  over the ramp; from 35-45 C, a spectrum every 2, 5 or 10 C at 2, 5 or 10 C/min, the
  temperature read with 0.3 C noise;
* non-isothermal JMAK crystallization, half-crystalline at 640-760 C on 850 C ramps (560-700 C
  on 600 C ramps), activation energy 1.8-4.5 eV, Avrami exponent 1-4;
* in 45 % of the films tetragonal first, the cubic share following a second JMAK (half-way
  25-80 C later, 2-5 eV, exponent 1-3); otherwise 90 % cubic throughout;
* in 55 % of the 850 C films decomposition to pyrochlore, a JMAK on the crystalline fraction
  (half-way at 805-880 C, 4-7 eV, exponent 1-3).

:func:`third_ramp` renders one seeded ramp as a :class:`~insitu.testing.raman_ramps.RenderedRamp`;
:data:`THIRD_SEEDS` are the ramps the detector was measured on.
"""

from __future__ import annotations

import numpy as np

from insitu.testing.evidence import matched_filter
from insitu.testing.raman_ramps import RenderedRamp

__all__ = [
    "THIRD_SEEDS",
    "describe_third_film",
    "draw_third_film",
    "third_evidence",
    "third_ramp",
]

THIRD_SEEDS: tuple[tuple[int, float], ...] = tuple(
    [(seed, 850.0) for seed in range(1, 41)] + [(seed, 600.0) for seed in range(101, 111)]
)
"""The (seed, end temperature in C) of the ramps measured: 1-40 to 850 C, 101-110 to 600 C."""

_BOLTZMANN_eV_K = 8.617333e-5
_HC_OVER_K_cm_K = 1.438777
_ROOM_C = 25.0
_RENDER_SEED_OFFSET = 7_000_001

# The paper's band positions (cm-1) and our relative intensities.
_CUBIC_BANDS = [94.0, 113.0, 240.0, 368.0, 468.0, 651.0]
_CUBIC_RELATIVE = [0.45, 0.6, 0.5, 0.55, 0.25, 1.0]
# 389/656 from the paper's tetragonal onset; the weak low bands shared with cubic.
_TETRAGONAL_BANDS = [113.0, 240.0, 389.0, 656.0]
_TETRAGONAL_RELATIVE = [0.3, 0.25, 1.0, 0.85]
_PYROCHLORE_BANDS = [275.0, 374.0, 491.0]
_PYROCHLORE_RELATIVE = [1.0, 0.6, 0.45]
_SILICON_BAND = 520.0

_CONFINEMENT_Q_GRID = np.linspace(0.0, 1.0, 60)


# ---- line shapes (unit height, w the full width at half maximum) ------------------------------
def _lorentzian(x, centre, width):
    return 1.0 / (1.0 + ((x - centre) / (0.5 * width)) ** 2)


def _gaussian(x, centre, width):
    return np.exp(-4.0 * np.log(2.0) * ((x - centre) / width) ** 2)


def _pseudo_voigt(x, centre, width, lorentzian_share):
    lorentzian = lorentzian_share * _lorentzian(x, centre, width)
    return lorentzian + (1.0 - lorentzian_share) * _gaussian(x, centre, width)


def _breit_wigner_fano(x, centre, width, fano_q):
    half_width = 0.5 * width
    reduced = (x - centre) / half_width
    shape = (1.0 + reduced / fano_q) ** 2 / (1.0 + reduced**2)
    return shape / (1.0 + 1.0 / fano_q**2)


def _confined_phonon(x, centre, width, size_over_lattice, dispersion):
    """Richter-Wang-Ley confinement, omega(q) = centre - dispersion*q^2, spherical crystallites."""
    q = _CONFINEMENT_Q_GRID
    weights = np.exp(-(q**2) * size_over_lattice**2 / 4.0) * q**2
    weights = weights / weights.sum()
    omega = centre - dispersion * q**2
    shape = (weights[:, None] / ((x[None, :] - omega[:, None]) ** 2 + (0.5 * width) ** 2)).sum(0)
    return shape / shape.max()


def _garnet_band(x, centre, width, film, size_over_lattice=None, dispersion=20.0):
    kind = film["shape"]
    if kind == "lorentz":
        return _lorentzian(x, centre, width)
    if kind == "pvoigt":
        return _pseudo_voigt(x, centre, width, film["eta"])
    if kind == "bwf":
        return _breit_wigner_fano(x, centre, width, film["fano_q"])
    if kind == "confine":
        size = size_over_lattice if size_over_lattice is not None else 20.0
        return _confined_phonon(x, centre, width, size, dispersion)
    raise ValueError(kind)


def _stokes_bose_factor(shift, temperature_C):
    """Stokes (n + 1), normalised to 25 C."""

    def occupation_plus_one(T_C):
        return 1.0 / (1.0 - np.exp(-_HC_OVER_K_cm_K * shift / (T_C + 273.15)))

    return occupation_plus_one(temperature_C) / occupation_plus_one(_ROOM_C)


def _logistic(x, midpoint, width):
    return 1.0 / (1.0 + np.exp(-(x - midpoint) / width))


def _planck(wavelength_um, temperature_K):
    return 1.0 / wavelength_um**5 / np.expm1(14387.77 / (wavelength_um * temperature_K))


# ---- kinetics ---------------------------------------------------------------------------------
def _jmak_fraction(temperatures_C, minutes, half_way_C, Ea_eV, avrami_n):
    """Non-isothermal JMAK on the spectrum time grid (a 20x finer grid for the integral)."""
    fine_minutes = np.linspace(minutes[0], minutes[-1], 20 * len(minutes))
    fine_K = np.interp(fine_minutes, minutes, temperatures_C) + 273.15
    rate = np.exp(-Ea_eV / (_BOLTZMANN_eV_K * fine_K))
    integral = np.concatenate(
        [[0.0], np.cumsum(0.5 * (rate[1:] + rate[:-1]) * np.diff(fine_minutes))]
    )
    # scale the prefactor so that the fraction is 1/2 at half_way_C on this ramp
    half_way_index = np.searchsorted(fine_K - 273.15, half_way_C)
    if half_way_index >= len(fine_K):  # beyond the ramp: extrapolate at the same heating rate
        heating_rate = (fine_K[-1] - fine_K[0]) / (fine_minutes[-1] - fine_minutes[0])
        extended_K = np.linspace(fine_K[0], half_way_C + 273.15, 20000)
        extended_rate = np.exp(-Ea_eV / (_BOLTZMANN_eV_K * extended_K))
        integral_half_way = np.trapezoid(extended_rate, extended_K) / heating_rate
    else:
        integral_half_way = integral[half_way_index]
    prefactor = np.log(2.0) ** (1.0 / avrami_n) / integral_half_way
    scaled = np.interp(minutes, fine_minutes, integral) * prefactor
    return 1.0 - np.exp(-(scaled**avrami_n))


# ---- film -------------------------------------------------------------------------------------
def _log_uniform(rng, low, high, size=None):
    return np.exp(rng.uniform(np.log(low), np.log(high), size))


def _relative_intensities(rng, pattern):
    factors = _log_uniform(rng, 0.3, 3, len(pattern))
    return [float(a * b) for a, b in zip(pattern, factors, strict=True)]


def draw_third_film(seed: int, end_C: float = 850.0) -> dict:
    """Draw one film's parameters (everything but the per-spectrum noise).

    Parameters
    ----------
    seed : int
        Seed of the draw; the same seed draws the same film.
    end_C : float
        End of the ramp (C). Ramps reaching 800 C or more crystallize later and may decompose.

    Returns
    -------
    dict
        The film: ramp (``step``, ``rate_C_min``, ``T0``, ``T_end``), axis (``npix``,
        ``ax_lo``, ``ax_hi``, ``ax_curv``, ``cal_offset``, ``cal_drift``), bands (``S``,
        ``shape``, widths ``w_*``, intensities ``i_*``, ...), backgrounds, instrument and
        kinetics (``Tm_*``, ``Ea_*``, ``n_*``, ``tet_first``, ``decomp``). All plain Python
        values.
    """
    rng = np.random.default_rng(seed)
    film = {"seed": int(seed), "T_end": float(end_C)}
    film["step"] = int(rng.choice([2, 5, 10]))
    film["rate_C_min"] = float(rng.choice([2.0, 5.0, 5.0, 10.0]))
    film["T0"] = float(rng.uniform(35, 45))
    film["npix"] = int(rng.integers(1000, 2049))
    film["ax_lo"] = float(rng.uniform(80, 200))
    film["ax_hi"] = float(rng.uniform(900, 1500))
    film["ax_curv"] = float(rng.uniform(-0.04, 0.04))  # axis nonlinearity (fraction of span)
    film["cal_offset"] = float(rng.choice([-1, 1]) * rng.uniform(0.5, 5.0))
    film["cal_drift"] = float(rng.uniform(-2.0, 2.0))  # cm-1 over the whole ramp
    film["S"] = float(_log_uniform(rng, 100, 5000))  # strongest band, fully crystalline
    film["shape"] = str(
        rng.choice(["lorentz", "pvoigt", "bwf", "confine"], p=[0.15, 0.35, 0.2, 0.3])
    )
    film["eta"] = float(rng.uniform(0.2, 0.9))
    film["fano_q"] = float(-rng.uniform(5, 20))
    film["L_final_nm"] = float(rng.uniform(10, 40))
    film["soft"] = float(rng.uniform(0.01, 0.03))  # cm-1/C
    film["broaden"] = float(rng.uniform(0.1, 0.6))  # fractional width increase over 800 C
    film["w_cub"] = [float(x) for x in rng.uniform(5, 35, len(_CUBIC_BANDS))]
    film["w_tet"] = [float(x) for x in rng.uniform(8, 35, len(_TETRAGONAL_BANDS))]
    film["w_pyr"] = [float(x) for x in rng.uniform(15, 35, len(_PYROCHLORE_BANDS))]
    film["i_cub"] = _relative_intensities(rng, _CUBIC_RELATIVE)
    film["i_tet"] = _relative_intensities(rng, _TETRAGONAL_RELATIVE)
    film["i_pyr"] = _relative_intensities(rng, _PYROCHLORE_RELATIVE)
    film["tet_scale"] = float(rng.uniform(0.5, 1.2))  # strongest tetragonal band vs S
    film["pyr_scale"] = float(rng.uniform(0.3, 1.5))
    # amorphous humps: [centre, width, amplitude relative to S, temperature behaviour]
    film["amor"] = [
        [91.0, float(rng.uniform(35, 70)), float(rng.uniform(0.03, 0.25)), "grow400"],
        [143.0, float(rng.uniform(60, 110)), float(rng.uniform(0.03, 0.3)), "appear550"],
        [
            float(210 + rng.uniform(-15, 15)),
            float(rng.uniform(50, 90)),
            float(rng.uniform(0.02, 0.12)),
            "flat",
        ],
        [
            float(430 + rng.uniform(-40, 40)),
            float(rng.uniform(150, 260)),
            float(rng.uniform(0.03, 0.2)),
            "flat",
        ],
        [
            float(700 + rng.uniform(-40, 40)),
            float(rng.uniform(120, 220)),
            float(rng.uniform(0.03, 0.25)),
            "fade",
        ],
    ]
    film["amor_scale"] = float(rng.uniform(0.4, 1.6))
    # fluorescence
    film["fluo_ratio"] = float(_log_uniform(rng, 1, 20))
    film["fluo_centre"] = float(rng.uniform(1200, 4000))
    film["fluo_width"] = float(rng.uniform(1200, 3500))
    film["bleach_tau_min"] = float(rng.uniform(10, 150))
    film["bleach_floor"] = float(rng.uniform(0.05, 0.6))
    film["burnoff"] = bool(rng.random() < 0.4)  # organic residue burning off at 300-450 C
    film["burnoff_T"] = float(rng.uniform(300, 450))
    # blackbody, x S at 850 C and 1500 cm-1
    film["blackbody"] = float(rng.uniform(0.0, 2.0)) if rng.random() < 0.5 else 0.0
    # substrate
    film["si"] = bool(rng.random() < 0.45)
    film["si_rel"] = float(_log_uniform(rng, 0.3, 6))
    film["si_w"] = float(rng.uniform(3.5, 6.0))
    # instrument
    film["etalon"] = bool(rng.random() < 0.35)
    film["etalon_amp"] = float(rng.uniform(0.03, 0.15))
    film["etalon_per"] = float(rng.uniform(15, 80))
    film["edge_filter"] = bool(rng.random() < 0.5)
    film["edge_pos"] = float(film["ax_lo"] + rng.uniform(5, 40))
    film["bias"] = float(rng.uniform(100, 1000))
    film["read_noise"] = float(rng.uniform(3, 15))
    film["cosmic_rate"] = float(rng.uniform(0.1, 2.0))
    film["power_drift"] = float(rng.uniform(0.03, 0.15))
    film["resp_tilt"] = float(rng.uniform(-0.3, 0.3))
    # kinetics
    hot = end_C >= 800
    film["Tm_cryst"] = float(rng.uniform(640, 760) if hot else rng.uniform(560, 700))
    film["Ea_cryst"] = float(rng.uniform(1.8, 4.5))
    film["n_cryst"] = float(rng.choice([1.0, 1.5, 2.0, 2.5, 3.0, 4.0]))
    film["tet_first"] = bool(rng.random() < 0.45)
    film["Tm_t2c"] = float(film["Tm_cryst"] + rng.uniform(25, 80))
    film["Ea_t2c"] = float(rng.uniform(2.0, 5.0))
    film["n_t2c"] = float(rng.choice([1.0, 2.0, 3.0]))
    film["decomp"] = bool(hot and rng.random() < 0.55)
    film["Tm_dec"] = float(rng.uniform(805, 880))
    film["Ea_dec"] = float(rng.uniform(4.0, 7.0))
    film["n_dec"] = float(rng.choice([1.0, 1.5, 2.0, 3.0]))
    return film


def describe_third_film(film: dict) -> dict:
    """Summarise a film's main choices (as the measured results tabulate them).

    Parameters
    ----------
    film : dict
        A film from :func:`draw_third_film`.

    Returns
    -------
    dict
        ``S`` (strongest band, counts), ``fluo`` (fluorescence / S), ``shape``, ``si``,
        ``step`` (C), ``axis`` ([first, last cm-1, pixels]), ``Tm``/``n``/``Ea`` (crystallization),
        ``tet_first``, ``decomp``, ``Tm_dec`` (None without decomposition), ``etalon``, ``bb``
        (blackbody / S), ``burnoff``, ``edge`` (edge filter), ``cal`` (calibration offset, cm-1).
    """
    return {
        "S": round(film["S"]),
        "fluo": round(film["fluo_ratio"], 1),
        "shape": film["shape"],
        "si": film["si"],
        "step": film["step"],
        "axis": [round(film["ax_lo"]), round(film["ax_hi"]), film["npix"]],
        "Tm": round(film["Tm_cryst"]),
        "n": film["n_cryst"],
        "Ea": round(film["Ea_cryst"], 2),
        "tet_first": film["tet_first"],
        "decomp": film["decomp"],
        "Tm_dec": round(film["Tm_dec"]) if film["decomp"] else None,
        "etalon": film["etalon"],
        "bb": round(film["blackbody"], 2),
        "burnoff": film["burnoff"],
        "edge": film["edge_filter"],
        "cal": round(film["cal_offset"], 1),
    }


# ---- rendering --------------------------------------------------------------------------------
def _amorphous_growth(behaviour, temperature_C):
    if behaviour == "grow400":
        return 0.3 + 0.7 * _logistic(temperature_C, 330, 40)
    if behaviour == "appear550":
        return 0.05 + _logistic(temperature_C, 540, 25)
    if behaviour == "fade":
        return 1.0 - 0.3 * _logistic(temperature_C, 500, 60)
    return 1.0 + 0.1 * np.sin(temperature_C / 150.0)


def _laser_power(rng, film, n_spectra):
    drift = np.zeros(n_spectra)
    for k in range(1, n_spectra):
        drift[k] = 0.97 * drift[k - 1] + rng.normal(0, 0.25 * film["power_drift"])
    return 1 + np.clip(drift, -film["power_drift"], film["power_drift"])


def _add_cosmic_rays(rng, film, spectrum):
    for _ in range(rng.poisson(film["cosmic_rate"])):
        first_pixel = rng.integers(0, film["npix"])
        n_pixels = rng.integers(1, 4)
        hit = spectrum[first_pixel : first_pixel + n_pixels]
        hit += _log_uniform(rng, 200, 20000) * rng.uniform(0.3, 1, len(hit))


def _render(film, parts: bool = False):
    """Temperatures, axis, counts, crystalline and decomposed fractions of one film's ramp;
    with ``parts``, also the expected counts of the garnet bands, of the pyrochlore bands and of
    everything (before noise), per spectrum."""
    rng = np.random.default_rng(film["seed"] + _RENDER_SEED_OFFSET)
    set_C = np.arange(film["T0"], film["T_end"] + 1e-6, film["step"])
    temperatures = set_C + rng.normal(0, 0.3, len(set_C))
    minutes = (set_C - set_C[0]) / film["rate_C_min"]
    n_spectra = len(temperatures)

    # the axis the spectrometer reports; the true shift is the axis plus the calibration error
    unit = np.linspace(0, 1, film["npix"])
    span = film["ax_hi"] - film["ax_lo"]
    axis = film["ax_lo"] + span * (unit + film["ax_curv"] * unit * (1 - unit))
    pixels = np.arange(film["npix"])

    # kinetics
    transformed = _jmak_fraction(
        temperatures, minutes, film["Tm_cryst"], film["Ea_cryst"], film["n_cryst"]
    )
    if film["tet_first"]:  # the cubic share of the crystalline fraction
        cubic_share = _jmak_fraction(
            temperatures, minutes, film["Tm_t2c"], film["Ea_t2c"], film["n_t2c"]
        )
    else:  # mostly cubic directly, a little tetragonal
        cubic_share = np.full(n_spectra, 0.9)
    if film["decomp"]:
        decomposing = _jmak_fraction(
            temperatures, minutes, film["Tm_dec"], film["Ea_dec"], film["n_dec"]
        )
    else:
        decomposing = np.zeros(n_spectra)
    crystalline = transformed * (1 - decomposing)
    decomposed = transformed * decomposing
    amorphous = 1 - transformed

    strongest = film["S"]
    heights_cubic = np.array(film["i_cub"]) / max(film["i_cub"]) * strongest
    heights_tetragonal = (
        np.array(film["i_tet"]) / max(film["i_tet"]) * strongest * film["tet_scale"]
    )
    heights_pyrochlore = (
        np.array(film["i_pyr"]) / max(film["i_pyr"]) * strongest * film["pyr_scale"]
    )

    # slow instrument factors
    power = _laser_power(rng, film, n_spectra)
    response = 1 + film["resp_tilt"] * (unit - 0.5) + 0.05 * np.sin(2 * np.pi * unit * 1.3 + 1)
    if film["edge_filter"]:
        response = response * _logistic(axis, film["edge_pos"], 6.0)
    if film["etalon"]:
        phase = 2 * np.pi * pixels / film["etalon_per"] * (1 + 0.15 * unit) + 0.7
        etalon = 1 + film["etalon_amp"] * np.sin(phase)
    else:
        etalon = 1.0

    stokes_wavelength_um = 1.0 / (1.0 / 0.532 - axis * 1e-4)
    blackbody_reference = _planck(1.0 / (1.0 / 0.532 - 0.15), 1123.15)
    counts = np.empty((n_spectra, film["npix"]))
    garnet_counts, pyrochlore_counts = np.zeros_like(counts), np.zeros_like(counts)
    expected_counts = np.zeros_like(counts)
    for k in range(n_spectra):
        T_C = temperatures[k]
        calibration_drift = film["cal_drift"] * minutes[k] / max(minutes[-1], 1)
        x = axis + film["cal_offset"] + calibration_drift  # the true shift at each pixel
        heated = T_C - _ROOM_C
        width_factor = 1 + film["broaden"] * heated / 800.0
        softening = film["soft"] * heated
        size_nm = 5.0 + (film["L_final_nm"] - 5.0) * np.sqrt(max(transformed[k], 0.0))
        size_over_lattice = size_nm / 1.3
        signal = np.zeros_like(x)
        # crystalline
        if crystalline[k] > 1e-4:
            tetragonal = crystalline[k] * (1 - cubic_share[k])
            cubic = crystalline[k] * cubic_share[k]
            phases = (
                (cubic, _CUBIC_BANDS, film["w_cub"], heights_cubic),
                (tetragonal, _TETRAGONAL_BANDS, film["w_tet"], heights_tetragonal),
            )
            for fraction, positions, widths, heights in phases:
                if fraction > 1e-4:
                    for position, width, height in zip(positions, widths, heights, strict=True):
                        signal += (
                            fraction
                            * height
                            * _stokes_bose_factor(position, T_C)
                            * _garnet_band(
                                x,
                                position - softening,
                                width * width_factor,
                                film,
                                size_over_lattice,
                                dispersion=0.04 * position,
                            )
                        )
        garnet = signal.copy()
        if decomposed[k] > 1e-4:
            for position, width, height in zip(
                _PYROCHLORE_BANDS, film["w_pyr"], heights_pyrochlore, strict=True
            ):
                signal += (
                    decomposed[k]
                    * height
                    * _stokes_bose_factor(position, T_C)
                    * _pseudo_voigt(x, position - 0.6 * softening, width * width_factor, 0.5)
                )
        pyrochlore = signal - garnet
        # amorphous humps
        for centre, width, amplitude, behaviour in film["amor"]:
            signal += (
                amorphous[k]
                * film["amor_scale"]
                * amplitude
                * strongest
                * _amorphous_growth(behaviour, T_C)
                * _stokes_bose_factor(centre, T_C)
                * _gaussian(x, centre - 0.5 * softening, width * (1 + 0.1 * heated / 800))
            )
        # substrate
        if film["si"]:
            si_relative = film["si_rel"]
            si_position = _SILICON_BAND - 0.022 * heated - 1.2e-5 * heated**2
            si_width = film["si_w"] * (1 + 0.8 * heated / 800)
            signal += (
                si_relative
                * strongest
                * (1 - 0.3 * heated / 800)
                * _lorentzian(x, si_position, si_width)
            )
            signal += 0.08 * si_relative * strongest * _gaussian(x, 970 - 0.03 * heated, 60)  # 2TO
            signal += (  # 2TA
                0.04
                * si_relative
                * strongest
                * _stokes_bose_factor(150, T_C)
                * _gaussian(x, 300 - 0.02 * heated, 40)
            )
        # fluorescence, bleaching, optionally burning off
        bleached = film["bleach_floor"] + (1 - film["bleach_floor"]) * np.exp(
            -minutes[k] / film["bleach_tau_min"]
        )
        if film["burnoff"]:
            bleached *= 0.25 + 0.75 * (1 - _logistic(T_C, film["burnoff_T"], 20))
        fluorescence = _gaussian(x, film["fluo_centre"], film["fluo_width"])
        fluorescence = fluorescence / fluorescence.max()
        signal += film["fluo_ratio"] * strongest * bleached * (0.5 + 0.5 * fluorescence)
        # thermal emission, blackbody x S at 850 C and 1500 cm-1
        if film["blackbody"] > 0:
            glow = _planck(stokes_wavelength_um, T_C + 273.15)
            signal += film["blackbody"] * strongest * glow / blackbody_reference
        expected = signal * power[k] * response * etalon
        if parts:
            instrument = power[k] * response * etalon
            garnet_counts[k], pyrochlore_counts[k] = garnet * instrument, pyrochlore * instrument
            expected_counts[k] = expected
        spectrum = (
            rng.poisson(np.clip(expected, 0, None)).astype(float)
            + film["bias"]
            + rng.normal(0, film["read_noise"], film["npix"])
        )
        _add_cosmic_rays(rng, film, spectrum)
        counts[k] = np.round(spectrum)
    if parts:
        return (
            temperatures, axis, counts, crystalline, decomposed,
            garnet_counts, pyrochlore_counts, expected_counts,
        )  # fmt: skip
    return temperatures, axis, counts, crystalline, decomposed


def third_ramp(seed: int, end_C: float = 850.0) -> RenderedRamp:
    """Render one seeded ramp of the third generator.

    Parameters
    ----------
    seed : int
        Seed of the film (:func:`draw_third_film`) and of its noise.
    end_C : float
        Last set temperature of the ramp (C); 850 C ramps may decompose, 600 C ramps do not.

    Returns
    -------
    RenderedRamp
        Temperatures, the spectrometer's axis (increasing), counts (one spectrum per row) and the
        true crystalline and decomposed fractions.
    """
    temperatures, axis, counts, crystalline, decomposed = _render(draw_third_film(seed, end_C))
    return RenderedRamp(
        temperatures=temperatures,
        wavenumber=axis,
        counts=counts,
        crystalline=crystalline,
        decomposed=decomposed,
    )


def third_evidence(
    seed: int, end_C: float = 850.0, *, background_knots_cm1: float | None = None
) -> dict[str, np.ndarray]:
    """What the bands of each transition's new phase carry, in each spectrum of a ramp.

    As :func:`~insitu.testing.foreign_ramps.foreign_evidence` for the other generator: the
    matched-filter signal-to-noise ratio of the garnet bands (tetragonal and cubic,
    ``crystallization_onset``) and of the pyrochlore bands (``decomposition``) alone, with the
    true variance of the expected counts (shot noise and read noise), one value per spectrum
    (noise units). It knows every shape, so no detector working from those bands sees more: a
    bound, not a target. With ``background_knots_cm1``, only what an unknown smooth background
    fitted beside them (cubic B-splines that far apart) cannot take
    (:func:`~insitu.testing.evidence.beyond_smooth_background`).
    """
    film = draw_third_film(seed, end_C)
    _, axis, _, _, _, garnet, pyrochlore, expected = _render(film, parts=True)
    variance = np.clip(expected, 0.0, None) + film["read_noise"] ** 2
    return {
        "crystallization_onset": matched_filter(garnet, variance, axis, background_knots_cm1),
        "decomposition": matched_filter(pyrochlore, variance, axis, background_knots_cm1),
    }
