"""WITec backend against a fake with WITecSDK's documented surface (the SDK needs Windows + COM)."""

from __future__ import annotations

import builtins

import numpy as np
import pytest

from insitu.devices.raman import RamanSpectrometer, WitecBackend, parse_truematch, raman_shift_cm1

AXIS_NM = np.linspace(533.418, 561.893, 8)


def truematch_text(
    accumulations: list[list[float]],
    *,
    x: np.ndarray = AXIS_NM,
    excitation: float = 532.0,
    x_kind: str = "nm",
    version: str = "2.0",
) -> str:
    sections = [
        f"[WITEC_TRUEMATCH_ASCII_HEADER]\nVersion = {version}",
        "[XData]\n" + "\n".join(f"{v:.6f}" for v in x),
    ]
    for index, values in enumerate(accumulations):
        sections.append(
            "[SpectrumHeader]\n"
            f"Title = Spectrum {index}\n"
            f"ExcitationWavelength = {excitation}\n"
            f"SpectrumSize = {len(values)}\n"
            f"XDataKind = {x_kind}"
        )
        sections.append(
            f"[SampleMetaData]\ndouble Integration_Time = 2.5\nint Spectrum_Number = {index}"
        )
        sections.append("[SpectrumData]\n" + "\n".join(f"{v}" for v in values))
    return "\n\n".join(sections) + "\n"


class FakeLaserManager:
    def __init__(self, lasers: int = 2) -> None:
        self.NumberOfLasers = lasers
        self.selected: int | None = None
        self.SelectedLaserPower = 0.0

    def SelectLaser(self, index: int) -> None:  # noqa: N802 - the SDK's name
        self.selected = index


class FakeSilentSpectrum:
    def __init__(self, text: str) -> None:
        self.text = text
        self.parameters: dict | None = None
        self.started = 0

    def SetParameters(self, numberOfAccumulations: int, integrationTime: float, **kwargs):  # noqa: N802, N803
        self.parameters = {"accumulations": numberOfAccumulations, "time": integrationTime}

    async def AwaitSilentSpectrumAvailable(self) -> str:  # noqa: N802
        self.started += 1
        return self.text


class FakeActiveSequencer:
    def __init__(self) -> None:
        self.waited = 0

    async def WaitActiveSequencerFinished(self) -> None:  # noqa: N802
        self.waited += 1


class FakeControl:
    """The slice of ``WITecSDK.Control`` the backend uses (reference/witecsdk.md)."""

    def __init__(self, text: str, *, write_access: bool = True, silent: bool = True) -> None:
        self.LaserManager = FakeLaserManager()
        self.SilentSpectrum = FakeSilentSpectrum(text) if silent else None
        self.ActiveSequencer = FakeActiveSequencer()
        self.write_access = write_access
        self.released = False

    def RequestWriteAccess(self) -> bool:  # noqa: N802
        return self.write_access

    def ReleaseWriteAccess(self) -> None:  # noqa: N802
        self.released = True


def test_truematch_parser_reads_axis_accumulations_and_header():
    parsed = parse_truematch(truematch_text([[1, 2, 3, 4, 5, 6, 7, 8], [3, 4, 5, 6, 7, 8, 9, 10]]))
    assert parsed.x == pytest.approx(AXIS_NM)
    assert len(parsed.accumulations) == 2
    assert parsed.mean_counts.tolist() == [2, 3, 4, 5, 6, 7, 8, 9]
    assert parsed.excitation_wavelength_nm == 532.0
    assert parsed.x_kind == "nm"
    assert parsed.integration_time_s == 2.5


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (truematch_text([[1] * 8], version="1.0"), "version"),
        (truematch_text([[1] * 5]), "5 points, the axis 8"),
        ("[XData]\n1\n2\n", "no \\[XData\\] or no \\[SpectrumData\\]"),
        ("[XData]\n1\nabc\n\n[SpectrumData]\n1\n2", "XData"),
    ],
)
def test_truematch_parser_rejects_bad_text(text, message):
    with pytest.raises(ValueError, match=message):
        parse_truematch(text)


def test_backend_configures_and_acquires_through_the_silent_spectrum():
    control = FakeControl(truematch_text([[10.0] * 8, [20.0] * 8]))
    backend = WitecBackend(control, laser_index=1, laser_wavelength_nm=532.0)
    assert control.LaserManager.selected == 1
    backend.configure(2.5, 2, 7.5)
    assert control.LaserManager.SelectedLaserPower == 7.5
    assert control.SilentSpectrum.parameters == {"accumulations": 2, "time": 2.5}
    axis, counts = backend.acquire()
    assert axis == pytest.approx(raman_shift_cm1(AXIS_NM, 532.0))
    assert counts.tolist() == [15.0] * 8
    assert control.ActiveSequencer.waited == 1  # waits for the sequencer before the next start
    backend.close()
    assert control.released


def test_backend_in_a_device():
    control = FakeControl(truematch_text([[5.0] * 8]))
    raman = RamanSpectrometer(WitecBackend(control), name="raman")
    raman.trigger().wait(5)
    assert raman.spectrum.get().tolist() == [5.0] * 8
    assert raman.wavenumber.get()[0] == pytest.approx(50.0, abs=0.1)
    raman.close()
    assert control.released


def test_raman_shift_axis_is_passed_through():
    shift = np.linspace(50.0, 1000.0, 8)
    control = FakeControl(truematch_text([[1.0] * 8], x=shift, x_kind="rel. 1/cm"))
    axis, _ = WitecBackend(control).acquire()
    assert axis == pytest.approx(shift)


def test_wrong_excitation_wavelength_raises():
    control = FakeControl(truematch_text([[1.0] * 8], excitation=633.0))
    with pytest.raises(ValueError, match="ExcitationWavelength 633"):
        WitecBackend(control).acquire()


def test_unknown_axis_unit_raises():
    control = FakeControl(truematch_text([[1.0] * 8], x_kind="pixels"))
    with pytest.raises(ValueError, match="pixels"):
        WitecBackend(control).acquire()


def test_refused_write_access_missing_silent_spectrum_and_bad_laser():
    with pytest.raises(PermissionError, match="write access"):
        WitecBackend(FakeControl("", write_access=False))
    with pytest.raises(RuntimeError, match="5.2"):
        WitecBackend(FakeControl("", silent=False))
    with pytest.raises(ValueError, match="laser_index 2 is outside the allowed range 0 to 1"):
        WitecBackend(FakeControl(""), laser_index=2)


@pytest.mark.parametrize(
    ("exposure", "accumulations", "power", "message"),
    [(0.0, 1, 1.0, "exposure"), (1.0, 0, 1.0, "accumulations"), (1.0, 1, -2.0, "laser_power")],
)
def test_bad_settings_raise_before_touching_the_sdk(exposure, accumulations, power, message):
    control = FakeControl("")
    backend = WitecBackend(control)
    with pytest.raises(ValueError, match=message):
        backend.configure(exposure, accumulations, power)
    assert control.SilentSpectrum.parameters is None
    assert control.LaserManager.SelectedLaserPower == 0.0


def test_missing_sdk_gives_a_clear_import_error(monkeypatch):
    real_import = builtins.__import__

    def no_witec(name, *args, **kwargs):
        if name.startswith("WITecSDK"):
            raise ImportError("No module named 'WITecSDK'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_witec)
    with pytest.raises(ImportError, match="needs the WITecSDK package on Windows"):
        WitecBackend()
