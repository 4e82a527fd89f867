"""The Raman device end to end: emulator, LabSpec 6 client, ophyd device, bluesky, catalog."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import bluesky.plan_stubs as bps
import bluesky.plans as bp
import numpy as np
import pytest
from bluesky import RunEngine
from bluesky.utils import FailedStatus

from insitu import clock
from insitu.devices.raman import (
    AcquisitionStoppedError,
    LabSpec6Backend,
    LabSpec6Error,
    RamanSpectrometer,
    median_of_accumulations,
    raman_shift_cm1,
    remove_spikes_whitaker_hayes,
    wavelength_nm,
)
from insitu.sim.labspec6 import LabSpec6Emulator
from insitu.sim.sample import GarnetFilm
from insitu.sim.thermal_profile import ThermalProfile


@pytest.fixture
def fast_clock() -> Iterator[None]:
    previous = clock.speedup()
    clock.set_speedup(1000.0)
    yield
    clock.set_speedup(previous)


@pytest.fixture
def emulator(fast_clock) -> Iterator[LabSpec6Emulator]:
    with LabSpec6Emulator(GarnetFilm(), lambda: 25.0, seed=0) as emu:
        yield emu


@pytest.fixture
def raman(emulator) -> Iterator[RamanSpectrometer]:
    backend = LabSpec6Backend.connect("127.0.0.1", emulator.serve_tcp(), timeout_s=5.0)
    device = RamanSpectrometer(backend, name="raman", max_laser_power_mW=10.0)
    yield device
    device.close()


def run_collecting(plan) -> list[tuple[str, dict]]:
    documents: list[tuple[str, dict]] = []
    RunEngine({})(plan, lambda name, doc: documents.append((name, doc)))
    return documents


# --- reading spectra in bluesky ----------------------------------------------------------------
def test_count_reads_spectra_with_the_axis_in_the_descriptor(raman):
    raman.exposure.set(5.0).wait(1)
    documents = run_collecting(bp.count([raman], num=3))
    names = [name for name, _ in documents]
    assert names == ["start", "descriptor", "event", "event", "event", "stop"]
    descriptor = documents[1][1]
    data_key = descriptor["data_keys"]["raman_spectrum"]
    assert data_key["shape"] == [1600] and data_key["dtype"] == "array"
    assert data_key["units"] == "counts"
    configuration = descriptor["configuration"]["raman"]
    axis = np.asarray(configuration["data"]["raman_wavenumber"])
    assert axis.shape == (1600,)
    assert axis[0] == pytest.approx(50.0, abs=0.01) and axis[-1] == pytest.approx(1000.0, abs=0.01)
    assert configuration["data"]["raman_exposure"] == 5.0
    assert configuration["data_keys"]["raman_wavenumber"]["shape"] == [1600]
    spectra = [
        np.asarray(doc["data"]["raman_spectrum"]) for name, doc in documents if name == "event"
    ]
    assert all(s.shape == (1600,) for s in spectra)
    assert not np.array_equal(spectra[0], spectra[1])  # fresh noise each time
    assert documents[-1][1]["exit_status"] == "success"


def test_spectra_follow_the_film_through_an_in_situ_ramp(fast_clock):
    # 3000x: ~3 wall s for the ramp; a loaded machine's latency (~0.1 s a spectrum) still
    # leaves a spectrum every ~10 experiment minutes (at 10000x it cost half of them).
    clock.set_speedup(3000.0)
    start = clock.now()
    ramp = ThermalProfile.ramp(25.0, 850.0, 5.0, start_time=start)
    film = GarnetFilm(ramp, start_time=start)
    with LabSpec6Emulator(film, lambda: float(ramp(clock.now())), seed=1) as emu:
        backend = LabSpec6Backend.connect("127.0.0.1", emu.serve_tcp(), timeout_s=5.0)
        raman = RamanSpectrometer(backend, name="raman")
        raman.exposure.put(10.0)
        temperatures, a1g = [], []

        def ramp_plan():
            yield from bps.open_run()
            due = start
            while clock.now() < ramp.end_time:
                yield from bps.trigger_and_read([raman])
                axis, counts = raman.wavenumber.get(), raman.spectrum.get()
                temperatures.append(float(ramp(clock.now())))
                peak = np.abs(axis - 652.0) < 5
                shoulders = (np.abs(axis - 652.0) > 50) & (np.abs(axis - 652.0) < 70)
                a1g.append(counts[peak].mean() - counts[shoulders].mean())
                # A spectrum every 10 experiment min on a fixed schedule (720-820 C holds two
                # slots): a spectrum's latency does not push the next ones later.
                while due <= clock.now():
                    due += 600.0
                yield from bps.sleep(clock.to_wall(due - clock.now()))
            yield from bps.close_run()

        RunEngine({})(ramp_plan())
        raman.close()
    temperatures, a1g = np.array(temperatures), np.array(a1g)
    assert len(temperatures) > 8
    assert np.all(a1g[temperatures < 600] < 80)  # amorphous: no O-Zr-O A1g band (noise ~15)
    assert np.any(a1g[(temperatures > 720) & (temperatures < 820)] > 400)  # cubic garnet


def test_spectra_land_in_the_catalog_with_their_axis(raman, catalog):
    from insitu.beamline.durable_writer import DurableTiledWriter

    writer = DurableTiledWriter(catalog)
    engine = RunEngine({})
    engine.subscribe(writer)
    raman.exposure.put(2.0)
    (uid,) = engine(bp.count([raman], num=2))
    assert writer.wait(30)
    writer.close()
    run = catalog[uid]
    spectra = np.asarray(run["primary"].read()["raman_spectrum"].values)
    assert spectra.shape == (2, 1600)
    descriptor = run["primary"].descriptors[0]
    axis = np.asarray(descriptor["configuration"]["raman"]["data"]["raman_wavenumber"])
    assert axis.shape == (1600,)
    assert axis[0] == pytest.approx(50.0, abs=0.01)


# --- bad settings raise before any acquisition ----------------------------------------------------
class SpyBackend:
    """A backend that records calls and returns a flat spectrum (optionally with spikes)."""

    laser_wavelength_nm = 532.0

    def __init__(self, spikes: list[int] | None = None) -> None:
        self.calls: list[tuple] = []
        self.spikes = list(spikes or [])
        self.fail_with: Exception | None = None
        self.release = threading.Event()
        self.release.set()

    def configure(self, exposure_s: float, accumulations: int, laser_power_mW: float) -> None:
        self.calls.append(("configure", exposure_s, accumulations, laser_power_mW))

    def acquire(self) -> tuple[np.ndarray, np.ndarray]:
        self.calls.append(("acquire",))
        self.release.wait(5)
        if self.fail_with is not None:
            raise self.fail_with
        counts = np.full(200, 100.0) + np.random.default_rng(len(self.calls)).normal(0, 1, 200)
        if self.spikes:
            counts[self.spikes.pop(0)] += 5000.0
        return np.linspace(50.0, 1000.0, 200), counts

    def close(self) -> None:
        self.calls.append(("close",))


@pytest.fixture
def spy() -> SpyBackend:
    return SpyBackend()


@pytest.fixture
def spy_raman(spy) -> Iterator[RamanSpectrometer]:
    device = RamanSpectrometer(spy, name="raman", max_laser_power_mW=10.0)
    yield device
    device.close()


@pytest.mark.parametrize(
    ("signal", "value", "message"),
    [
        (
            "exposure",
            -1.0,
            r"raman_exposure -1.0 s is outside the allowed range 0 < value <= 3600 s",
        ),
        ("exposure", 0.0, r"raman_exposure 0.0 s is outside the allowed range"),
        ("accumulations", 0, r"raman_accumulations 0 is outside the allowed range 1 <= integer"),
        ("accumulations", 2.5, r"raman_accumulations 2.5 is not an integer"),
        (
            "laser_power",
            12.0,
            r"raman_laser_power 12.0 mW is outside the allowed range 0 < value <= 10 mW",
        ),
        ("laser_power", -3.0, r"raman_laser_power -3.0 mW is outside"),
        ("exposure", "long", r"raman_exposure 'long' is not a number"),
        ("cosmic_ray_removal", "magic", r"raman_cosmic_ray_removal 'magic' is not one of"),
    ],
)
def test_bad_settings_raise_at_once_and_nothing_is_sent(spy_raman, spy, signal, value, message):
    component = getattr(spy_raman, signal)
    before = component.get()
    with pytest.raises(ValueError, match=message):
        component.set(value)
    with pytest.raises(ValueError, match=message):
        component.put(value)
    assert component.get() == before
    assert spy.calls == []


def test_bad_setting_in_a_plan_aborts_before_acquisition(spy_raman, spy):
    def plan():
        yield from bps.mv(spy_raman.laser_power, 50.0)
        yield from bp.count([spy_raman])

    with pytest.raises(ValueError, match="raman_laser_power 50.0 mW"):
        RunEngine({})(plan())
    assert spy.calls == []


def test_median_removal_needs_three_accumulations(spy_raman, spy):
    spy_raman.cosmic_ray_removal.put("median")
    spy_raman.accumulations.put(2)
    with pytest.raises(ValueError, match="raman.accumulations 2 .* 3 <= integer"):
        spy_raman.trigger()
    assert spy.calls == []


def test_bad_constructor_arguments(spy):
    with pytest.raises(ValueError, match="differs from its backend's 532.0 nm"):
        RamanSpectrometer(spy, name="raman", laser_wavelength_nm=785.0)
    with pytest.raises(ValueError, match="max_laser_power"):
        RamanSpectrometer(spy, name="raman", max_laser_power_mW=-1.0)
    with pytest.raises(TypeError, match="no configure"):
        RamanSpectrometer(object(), name="raman")


# --- acquisition in the background ----------------------------------------------------------------
def test_trigger_configures_once_and_finishes_when_read(spy_raman, spy):
    spy_raman.exposure.put(3.0)
    spy_raman.accumulations.put(4)
    spy_raman.trigger().wait(5)
    spy_raman.trigger().wait(5)
    assert spy.calls == [("configure", 3.0, 4, 10.0), ("acquire",), ("acquire",)]
    assert spy_raman.spectrum.get().shape == (200,)
    assert spy_raman.wavenumber.get()[0] == 50.0


def test_trigger_returns_before_the_acquisition_ends(spy_raman, spy):
    spy.release.clear()
    status = spy_raman.trigger()
    assert not status.done
    with pytest.raises(RuntimeError, match="already acquiring"):
        spy_raman.trigger()
    spy.release.set()
    status.wait(5)
    assert status.success


def test_backend_failure_fails_the_status(spy_raman, spy):
    spy.fail_with = ConnectionError("cable pulled")
    status = spy_raman.trigger()
    with pytest.raises(ConnectionError, match="cable pulled"):
        status.wait(5)
    assert status.done and not status.success
    spy.fail_with = None
    spy_raman.trigger().wait(5)  # the device recovers


def test_a_failed_acquisition_does_not_stop_the_next_one(spy_raman, spy, monkeypatch):
    # ophyd's DeviceStatus calls device.stop() on failure after waking its waiters: a trigger
    # made at once after the failure (a plan retrying) had its acquisition stopped by it.
    stops = []
    monkeypatch.setattr(spy_raman, "stop", lambda **kwargs: stops.append(kwargs))
    spy.fail_with = ConnectionError("cable pulled")
    status = spy_raman.trigger()
    # ophyd runs a Status' callbacks after its failure handling (the stop), on the same thread.
    handled = threading.Event()
    status.add_callback(lambda _: handled.set())
    with pytest.raises(ConnectionError):
        status.wait(5)
    assert handled.wait(5)
    assert stops == []


def test_emulator_error_reaches_the_plan(raman, emulator):
    raman.trigger().wait(5)
    emulator.inject_fault("error")
    raman.exposure.put(2.0)  # forces a configure, which the emulator now refuses
    with pytest.raises(FailedStatus) as info:
        RunEngine({})(bp.count([raman]))
    assert isinstance(info.value.__cause__, LabSpec6Error)
    assert "injected fault" in str(info.value.__cause__)
    emulator.clear_fault()


def test_stop_fails_a_median_acquisition(spy_raman, spy):
    spy_raman.cosmic_ray_removal.put("median")
    spy_raman.accumulations.put(5)
    spy.release.clear()
    status = spy_raman.trigger()
    spy_raman.stop()
    spy.release.set()
    with pytest.raises(AcquisitionStoppedError):
        status.wait(5)
    assert spy.calls.count(("acquire",)) == 1


# --- cosmic-ray removal ---------------------------------------------------------------------------
def test_median_removal_drops_a_spike_in_one_accumulation(spy):
    spy.spikes = [50]
    device = RamanSpectrometer(spy, name="raman", cosmic_ray_removal="median")
    device.accumulations.put(3)
    device.trigger().wait(5)
    assert spy.calls[0] == ("configure", 1.0, 1, 10.0)  # accumulations acquired one by one
    assert spy.calls.count(("acquire",)) == 3
    assert device.spectrum.get().max() < 110.0
    device.close()


def test_whitaker_hayes_removes_a_spike(spy):
    spy.spikes = [120]
    device = RamanSpectrometer(spy, name="raman", cosmic_ray_removal="whitaker_hayes")
    device.trigger().wait(5)
    assert device.spectrum.get().max() < 110.0
    device.close()


def test_without_removal_the_spike_stays(spy_raman, spy):
    spy.spikes = [120]
    spy_raman.trigger().wait(5)
    assert spy_raman.spectrum.get()[120] > 5000.0


# --- axis conversion and despiking helpers --------------------------------------------------------
def test_axis_conversion_round_trips_and_rejects_nonsense():
    shift = np.array([50.0, 500.0, 1000.0])
    assert raman_shift_cm1(wavelength_nm(shift, 532.0), 532.0) == pytest.approx(shift)
    assert wavelength_nm(0.0, 532.0) == pytest.approx(532.0)
    with pytest.raises(ValueError, match="positive"):
        raman_shift_cm1([-1.0], 532.0)
    with pytest.raises(ValueError, match="laser_wavelength"):
        raman_shift_cm1([540.0], 5.0)
    with pytest.raises(ValueError, match="below"):
        wavelength_nm([20000.0], 532.0)


def test_despiking_keeps_real_peaks():
    axis = np.linspace(50.0, 1000.0, 1600)
    rng = np.random.default_rng(0)
    clean = 300.0 + 800.0 / (1 + ((axis - 651.0) / 10.0) ** 2) + rng.normal(0, 10, axis.size)
    spiky = clean.copy()
    spiky[[200, 201, 900]] += 3000.0
    despiked = remove_spikes_whitaker_hayes(spiky)
    assert np.abs(despiked - clean).max() < 60.0
    assert despiked.max() == pytest.approx(clean.max(), rel=0.05)
    with pytest.raises(ValueError, match="at least 3"):
        median_of_accumulations(np.ones((2, 10)))
