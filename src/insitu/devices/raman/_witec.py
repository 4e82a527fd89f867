"""WITec alpha300 backend over the WITecSDK package (Windows, COM), plus a TrueMatch text parser.

The SDK is imported only when this backend is built without an injected ``control`` object, and
only works on Windows with WITec Control (>= 5.2 for ``SilentSpectrum``) and its paid COM Add-On
(``reference/witecsdk.md``). On Linux even ``WITecSDK.Spectrum`` fails to import, so this module
carries its own parser of the TrueMatch ASCII text that ``SilentSpectrum`` returns. It is tested
against a fake object with the SDK's documented surface, never against a real instrument.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import numpy as np

from insitu.checks import as_positive
from insitu.devices.raman._axis import check_laser_wavelength, raman_shift_cm1

__all__ = ["WitecBackend", "TrueMatchSpectrum", "parse_truematch"]


@dataclass(frozen=True)
class TrueMatchSpectrum:
    """One spectrum parsed from WITec's TrueMatch ASCII text.

    Attributes
    ----------
    x : ndarray
        The ``[XData]`` axis as sent (unit in ``x_kind``).
    accumulations : tuple of ndarray
        One intensity array per ``[SpectrumData]`` block.
    excitation_wavelength_nm : float or None
        ``ExcitationWavelength`` from ``[SpectrumHeader]``.
    x_kind : str or None
        ``XDataKind`` from ``[SpectrumHeader]``.
    integration_time_s : float or None
        ``double Integration_Time`` from ``[SampleMetaData]``.
    """

    x: np.ndarray
    accumulations: tuple[np.ndarray, ...]
    excitation_wavelength_nm: float | None
    x_kind: str | None
    integration_time_s: float | None

    @property
    def mean_counts(self) -> np.ndarray:
        """Mean over the accumulations (the SDK's ``AccumulatedSpectrumData``)."""
        return np.mean(np.vstack(self.accumulations), axis=0)


def _key_values(lines: list[str], section: str) -> dict[str, str]:
    pairs = {}
    for line in lines:
        key, sep, value = line.partition(" = ")
        if not sep:
            raise ValueError(f"TrueMatch {section} line {line!r} is not 'key = value'")
        pairs[key.strip()] = value.strip()
    return pairs


def parse_truematch(text: str) -> TrueMatchSpectrum:
    """Parse WITec TrueMatch ASCII (version >= 2.0) as ``SilentSpectrum`` returns it.

    Sections are separated by blank lines; each starts with its ``[NAME]`` line.

    Raises
    ------
    ValueError
        On an unsupported version, a missing ``[XData]`` or ``[SpectrumData]``, non-numeric
        values, or spectra whose length differs from the axis.
    """
    x: np.ndarray | None = None
    spectra: list[np.ndarray] = []
    header: dict[str, str] = {}
    metadata: dict[str, str] = {}
    for block in text.replace("\r\n", "\n").split("\n\n"):
        lines = [line for line in block.strip("\n").split("\n") if line.strip()]
        if not lines:
            continue
        name, body = lines[0].strip(), lines[1:]
        try:
            if name == "[WITEC_TRUEMATCH_ASCII_HEADER]":
                version = float(_key_values(body, name).get("Version", "0"))
                if version < 2.0:
                    raise ValueError(f"TrueMatch ASCII version {version} is not supported (< 2.0)")
            elif name == "[XData]":
                x = np.array([float(v) for v in body])
            elif name == "[SpectrumHeader]":
                header.update(_key_values(body, name))
            elif name == "[SampleMetaData]":
                metadata.update(_key_values(body, name))
            elif name == "[SpectrumData]":
                spectra.append(np.array([float(v) for v in body]))
        except ValueError as exc:
            raise ValueError(f"TrueMatch section {name}: {exc}") from exc
    if x is None or not spectra:
        raise ValueError("TrueMatch text has no [XData] or no [SpectrumData] section")
    for index, values in enumerate(spectra):
        if values.shape != x.shape:
            raise ValueError(
                f"TrueMatch spectrum {index} has {values.size} points, the axis {x.size}"
            )
    excitation = header.get("ExcitationWavelength")
    integration = metadata.get("double Integration_Time")
    return TrueMatchSpectrum(
        x=x,
        accumulations=tuple(spectra),
        excitation_wavelength_nm=float(excitation) if excitation else None,
        x_kind=header.get("XDataKind"),
        integration_time_s=float(integration) if integration else None,
    )


def _import_control_class() -> Any:
    try:
        from WITecSDK import Control  # noqa: PLC0415 (Windows-only, imported on demand)
    except Exception as exc:  # ImportError on Linux; LibraryNotFoundException without COM Add-On
        raise ImportError(
            "the witec Raman backend needs the WITecSDK package on Windows with WITec Control "
            "running and its COM Add-On registered (pip install witecsdk); importing it failed: "
            f"{exc}"
        ) from exc
    return Control


def _link_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean the COM link to WITec Control is lost (SDK's, when importable)."""
    try:
        from WITecSDK.com_client import COMClientException  # noqa: PLC0415 (Windows only)
    except Exception:  # not Windows / no COM Add-On: the backend cannot be built anyway
        return (ConnectionError,)
    return (ConnectionError, COMClientException)


class WitecBackend:
    """Raman backend for a WITec alpha300 through WITecSDK's ``SilentSpectrum`` route.

    Parameters
    ----------
    control : object, optional
        A ``WITecSDK.Control`` instance (or a stand-in with its surface). Built with
        ``Control(remote_host)`` when omitted, which imports WITecSDK.
    laser_index : int
        Laser to select (0-based, ``LaserManager.SelectLaser``).
    laser_wavelength_nm : float
        Excitation wavelength; converts the nm axis to Raman shift and must match the
        spectrum header's ``ExcitationWavelength``.
    remote_host : str, optional
        Host running WITec Control (DCOM); local when omitted.
    name : str
        Name used in error messages.

    Raises
    ------
    ImportError
        If WITecSDK cannot be imported (not Windows, no COM Add-On).
    PermissionError
        If WITec Control refuses write access (press "COM Automation" in WITec Control).
    RuntimeError
        If ``SilentSpectrum`` is not available (WITec Control older than 5.2).
    """

    def __init__(
        self,
        control: Any = None,
        *,
        laser_index: int = 0,
        laser_wavelength_nm: float = 532.0,
        remote_host: str | None = None,
        name: str = "witec",
    ) -> None:
        self.name = name
        self.laser_wavelength_nm = check_laser_wavelength(laser_wavelength_nm, owner=name)
        self._builds_control = control is None
        self._remote_host = remote_host
        self._laser_index = laser_index
        self.link_errors = _link_errors() if self._builds_control else (ConnectionError,)
        self._attach(self._new_control() if control is None else control)

    def _new_control(self) -> Any:
        control_class = _import_control_class()
        return control_class(self._remote_host) if self._remote_host else control_class()

    def _attach(self, control: Any) -> None:
        """Take write access, check ``SilentSpectrum`` and select the laser."""
        name, laser_index = self.name, self._laser_index
        self.control = control
        if not control.RequestWriteAccess():
            raise PermissionError(
                f"{name}: WITec Control refused write access; enable COM Automation -> Allow "
                f"Remote Access and press the COM Automation button"
            )
        self._silent = control.SilentSpectrum
        if self._silent is None:
            raise RuntimeError(f"{name}: SilentSpectrum needs WITec Control 5.2 or newer")
        lasers = int(control.LaserManager.NumberOfLasers)
        if int(laser_index) != laser_index or not 0 <= laser_index < lasers:
            raise ValueError(
                f"{name}.laser_index {laser_index} is outside the allowed range 0 to {lasers - 1}"
            )
        control.LaserManager.SelectLaser(int(laser_index))

    def reconnect(self) -> None:
        """Reattach after a lost COM link: a new ``Control`` (if this backend built it), write
        access and the laser again. Settings are sent again by the next :meth:`configure`.

        Not tried against a real WITec Control (no Windows here): the SDK's
        ``COMClientException`` (``ConnectionLostException``) is what counts as a lost link.
        """
        self._attach(self._new_control() if self._builds_control else self.control)

    def configure(self, exposure_s: float, accumulations: int, laser_power_mW: float) -> None:
        """Set the selected laser's power and the silent spectrum's integration parameters.

        Raises
        ------
        ValueError
            For a non-positive exposure or power, or accumulations < 1 (the SDK raises its own
            ``ValueOutOfRangeException`` for values outside the instrument's range).
        """
        exposure = as_positive(exposure_s, f"{self.name}.exposure", unit="s")
        if int(accumulations) != accumulations or accumulations < 1:
            raise ValueError(f"{self.name}.accumulations {accumulations} must be an integer >= 1")
        power = as_positive(laser_power_mW, f"{self.name}.laser_power", unit="mW")
        self.control.LaserManager.SelectedLaserPower = power
        self._silent.SetParameters(
            numberOfAccumulations=int(accumulations), integrationTime=exposure
        )

    async def _acquire_text(self) -> str:
        text = await self._silent.AwaitSilentSpectrumAvailable()
        # "Done" does not mean the sequencer is idle; wait before the next start.
        await self.control.ActiveSequencer.WaitActiveSequencerFinished()
        return text

    def acquire(self) -> tuple[np.ndarray, np.ndarray]:
        """Acquire a silent spectrum: ``(raman_shift_cm1, mean counts over accumulations)``.

        Raises
        ------
        ValueError
            If the spectrum's excitation wavelength differs from the configured one, or its
            x axis unit is not understood.
        """
        parsed = parse_truematch(asyncio.run(self._acquire_text()))
        excitation = parsed.excitation_wavelength_nm
        if excitation is not None and abs(excitation - self.laser_wavelength_nm) > 0.5:
            raise ValueError(
                f"{self.name}.laser_wavelength {self.laser_wavelength_nm} nm differs from the "
                f"spectrum's ExcitationWavelength {excitation} nm"
            )
        kind = (parsed.x_kind or "nm").strip().lower()
        if kind in ("nm", "nanometer", "nanometers", "wavelength"):
            axis = raman_shift_cm1(parsed.x, self.laser_wavelength_nm)
        elif "rel" in kind and "cm" in kind:
            axis = parsed.x.copy()
        else:
            raise ValueError(f"{self.name}: x axis unit XDataKind {parsed.x_kind!r} not understood")
        return axis, parsed.mean_counts

    def close(self) -> None:
        """Release write access."""
        self.control.ReleaseWriteAccess()
