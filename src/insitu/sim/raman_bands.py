"""Raman band table of the garnet film: positions (science.md), widths and heights per phase.

Positions are the paper's (``reference/science.md``, Raman peak table) at the temperature where
the paper saw each band, so an in-situ spectrum at that temperature shows the paper's number;
the spectrum model shifts them slightly to the red on heating (and to the blue on cooling).
Widths are bulk FWHM at 25 C; heights are counts per second at 10 mW for a film made entirely
of that phase (our choice, giving a signal-to-noise of tens in a few seconds, as for a 2 um film;
crystals scatter several times more strongly than the amorphous network, so the first few percent
of tetragonal nanocrystals at 650 C already show their 389 and 656 cm-1 bands). The minor
amorphous bands at 125 and 170 cm-1 are our placement of the paper's "minor peaks 100-250".

Each band belongs to a *group*, and the group's weight comes from the film state:

=========================  ==========================================================
group                      weight
=========================  ==========================================================
``matrix``                 amorphous + rearranged (the hump; the 91 band also grows
                           with the network relaxation, ``amorphous_order``)
``unrearranged``           amorphous (not rearranged) x amorphous_order: minor bands
``rearranged``             rearranged: the merged O-bending band at 143 cm-1
``tetragonal``             tetragonal fraction
``cubic``                  cubic fraction
``pyrochlore``             pyrochlore fraction
=========================  ==========================================================
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RamanBand", "BANDS", "GROUPS", "PEAK_TABLE"]

GROUPS = ("matrix", "unrearranged", "rearranged", "tetragonal", "cubic", "pyrochlore")


@dataclass(frozen=True)
class RamanBand:
    """One Raman band.

    Attributes
    ----------
    group : str
        Which phase weight scales it (one of :data:`GROUPS`).
    position_cm1 : float
        Raman shift at ``reference_temperature_C``.
    fwhm_cm1 : float
        Bulk full width at half maximum at 25 C.
    height : float
        Peak height, counts/s at 10 mW for a film fully in this group's phase.
    reference_temperature_C : float
        Temperature at which the band sits at ``position_cm1``.
    lorentz_fraction : float
        Pseudo-Voigt mixing: 1 Lorentzian, 0 Gaussian.
    size_broadened : bool
        Whether the band broadens as the crystallites shrink (phonon confinement).
    grows_with_order : bool
        Whether the height scales with the amorphous network's relaxation.
    assignment : str
        Mode assignment from the paper.
    """

    group: str
    position_cm1: float
    fwhm_cm1: float
    height: float
    reference_temperature_C: float
    lorentz_fraction: float
    size_broadened: bool
    grows_with_order: bool
    assignment: str


def _band(
    group: str,
    position: float,
    fwhm: float,
    height: float,
    t_ref: float,
    eta: float,
    assignment: str,
    *,
    crystal: bool = False,
    ordered: bool = False,
) -> RamanBand:
    return RamanBand(group, position, fwhm, height, t_ref, eta, crystal, ordered, assignment)


BANDS: tuple[RamanBand, ...] = (
    # Amorphous matrix: a broad hump and the O-La-O band that grows up to ~400 C.
    _band("matrix", 480.0, 520.0, 45.0, 25.0, 0.0, "amorphous network hump"),
    _band("matrix", 91.0, 20.0, 80.0, 400.0, 0.5, "O-La-O T2g", ordered=True),
    # Minor bands 100-250 cm-1 of the relaxed, not yet rearranged matrix (~400 C).
    _band("unrearranged", 125.0, 25.0, 20.0, 400.0, 0.5, "O bending T2g/A1g", ordered=True),
    _band("unrearranged", 170.0, 30.0, 15.0, 400.0, 0.5, "O bending T2g/A1g", ordered=True),
    _band("unrearranged", 210.0, 28.0, 50.0, 400.0, 0.5, "O bending T2g/A1g", ordered=True),
    # Local rearrangement, 500-600 C: the merged O-bending band.
    _band("rearranged", 143.0, 70.0, 90.0, 550.0, 0.3, "merged O-bending band"),
    # Tetragonal Li-garnet nanocrystals, onset 650 C.
    _band("tetragonal", 389.0, 10.0, 450.0, 650.0, 0.7, "O-Li-O T2g (LiO6)", crystal=True),
    _band("tetragonal", 656.0, 18.0, 800.0, 650.0, 0.7, "O-Zr-O A1g", crystal=True),
    # Cubic garnet, 750 C.
    _band("cubic", 94.0, 7.0, 300.0, 750.0, 0.7, "O-La-O T2g", crystal=True),
    _band("cubic", 113.0, 9.0, 340.0, 750.0, 0.7, "O-La-O Eg", crystal=True),
    _band("cubic", 240.0, 16.0, 340.0, 750.0, 0.7, "O bending T2g/A1g", crystal=True),
    _band("cubic", 368.0, 18.0, 280.0, 750.0, 0.7, "O-Li-O T2g", crystal=True),
    _band("cubic", 468.0, 22.0, 140.0, 750.0, 0.7, "O-Li-O Eg/T2g", crystal=True),
    _band("cubic", 651.0, 20.0, 800.0, 750.0, 0.7, "O-Zr-O A1g", crystal=True),
    # La2Zr2O7 pyrochlore after Li loss, 850 C.
    _band("pyrochlore", 275.0, 40.0, 400.0, 850.0, 0.6, "Eg", crystal=True),
    _band("pyrochlore", 374.0, 45.0, 220.0, 850.0, 0.6, "F2g", crystal=True),
    _band("pyrochlore", 491.0, 50.0, 160.0, 850.0, 0.6, "A1g/F2g", crystal=True),
)

# The paper's peak table (cm-1) by phase, for tests and reports.
PEAK_TABLE: dict[str, tuple[float, ...]] = {
    "amorphous_400C": (91.0, 125.0, 170.0, 210.0),
    "rearranged": (143.0,),
    "tetragonal": (389.0, 656.0),
    "cubic": (94.0, 113.0, 240.0, 368.0, 468.0, 651.0),
    "pyrochlore": (275.0, 374.0, 491.0),
}
