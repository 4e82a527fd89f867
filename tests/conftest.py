"""Test tiers and their time budget; shared fixtures (embedded catalog, clock, beamline).

Tiers (see docs/testing.md): every test is in exactly one of ``unit`` (tests/unit: pure code,
scripted transports, instant fakes), ``device`` (tests/protocol, tests/integration,
tests/faults: wire emulators, one beamline per module) or ``system`` (tests/services, and any
test marked ``slow``: subprocesses, SIGKILL, the demo, the end-to-end campaign, services).
``make test-fast`` runs ``-m "unit or device"``; ``make test`` runs all three.

A test of the fast tiers whose call takes more than ``FAST_TIER_LIMIT_S`` of its own time (unless
marked ``allow_slow``) is a design problem, not something to wait for. Its own time: the tier
runs more workers than the machine has cores (they mostly wait on sockets), and a test's wall
time then stretches by up to that ratio while the others compute, so the duration is divided by
it (``_oversubscription``): with 4 workers on 2 cores, tests of 2.7-4.3 s alone took 5.1-6.6 s
and failed the strict budget at random, a different few on every run (a test that only sleeps
is not stretched and gets the same leeway: run it on one worker to see its own time).
``make test-fast`` passes ``--strict-budget``, which fails it; ``make test`` (CI, a shared and
slower machine whose load is not the test's doing) lists it at the end of the run instead of
failing a correct test.
"""

from __future__ import annotations

import collections
import os
from pathlib import Path

import pytest

from insitu import clock

FAST_TIER_LIMIT_S = 5.0
TIERS = ("unit", "device", "system")
_TIER_OF_FOLDER = {
    "unit": "unit",
    "protocol": "device",
    "integration": "device",
    "faults": "device",
    "services": "system",
}


def _tier(item) -> str:
    explicit = [tier for tier in TIERS if item.get_closest_marker(tier) is not None]
    if explicit:
        return explicit[0]
    if item.get_closest_marker("slow") is not None or item.get_closest_marker("services"):
        return "system"
    folder = Path(str(item.fspath)).parent.name
    if folder not in _TIER_OF_FOLDER:
        raise pytest.UsageError(f"{item.nodeid}: folder {folder!r} has no tier; add it in conftest")
    return _TIER_OF_FOLDER[folder]


def pytest_collection_modifyitems(config, items):
    for item in items:
        tier = _tier(item)
        item.user_properties.append(("tier", tier))
        if item.get_closest_marker(tier) is None:
            item.add_marker(tier)
    # Under `--dist loadfile` the workers take whole files in this order: the files of the
    # minutes-long tests first, then files by their number of tests (pytest-xdist's own default
    # order, `--loadscope-reorder`, which the system tiers turn off so that this one holds: it
    # had put the one-test demo file last, and one worker ran it alone for ~160 s).
    per_file = collections.Counter(item.nodeid.split("::")[0] for item in items)
    long_files = {item.nodeid.split("::")[0] for item in items if item.get_closest_marker("long")}

    def order(item):
        path = item.nodeid.split("::")[0]
        return (path not in long_files, -per_file[path])

    items.sort(key=order)


def pytest_addoption(parser):
    parser.addoption(
        "--strict-budget",
        action="store_true",
        help=f"fail unit/device tests whose call takes over {FAST_TIER_LIMIT_S:.0f} s",
    )


_over_budget: list[str] = []


def _oversubscription() -> float:
    """Test processes per core in this run (at least 1): how much the others can stretch a
    test's wall time."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    return max(1.0, workers / (os.cpu_count() or 1))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.passed:
        return
    tier = dict(item.user_properties).get("tier")
    if tier not in ("unit", "device") or item.get_closest_marker("allow_slow") is not None:
        return
    stretch = _oversubscription()
    if report.duration / stretch > FAST_TIER_LIMIT_S:
        shared = f" ({stretch:g} test processes per core)" if stretch > 1.0 else ""
        message = (
            f"{item.nodeid} is in the {tier} tier and took {report.duration:.1f} s{shared}, "
            f"over its {FAST_TIER_LIMIT_S:.0f} s budget: make it faster, or move it to the "
            "system tier (mark it slow) or mark it allow_slow(reason) saying why"
        )
        if item.config.getoption("--strict-budget"):
            report.outcome = "failed"
            report.longrepr = message
        else:
            # On the report, not in this process: under pytest-xdist the summary is printed by
            # the controller, which sees only reports.
            report.user_properties.append(("over_budget", message))


def pytest_runtest_logreport(report):
    _over_budget.extend(text for key, text in report.user_properties if key == "over_budget")


def pytest_terminal_summary(terminalreporter):
    if _over_budget:
        terminalreporter.section("fast-tier tests over their time budget")
        for message in _over_budget:
            terminalreporter.line(message)


@pytest.fixture
def real_time_clock():
    """Real time, aligned with the wall clock, before and after the test."""
    clock.reset()
    yield clock
    clock.reset()


@pytest.fixture
def catalog_dir(tmp_path):
    """A directory for an embedded catalog."""
    return tmp_path / "catalog"


@pytest.fixture
def catalog(catalog_dir):
    """An embedded catalog's runs container, closed after the test."""
    from insitu.beamline.catalog import close_catalog, open_catalog

    runs = open_catalog(catalog_dir)
    yield runs
    close_catalog(runs)


def _simulated_beamline(tmp_path, *, speedup: float, seed: int, virtual_time: bool = False):
    """Load the simulated beamline into ``tmp_path`` (catalog and metadata), without a table."""
    import insitu.beamline

    config = {
        "catalog": {"location": str(tmp_path / "data")},
        "metadata_dir": str(tmp_path / "md"),
        "simulation": {"speedup": speedup, "seed": seed, "virtual_time": virtual_time},
    }
    return insitu.beamline.load(config, table=False)


@pytest.fixture
def held_time_beamline(tmp_path):
    """The simulated beamline with live analysis at the demo's 2000x, on held experiment time."""
    from insitu.demo import DEMO_SPEEDUP

    beamline = _simulated_beamline(tmp_path, speedup=DEMO_SPEEDUP, seed=7, virtual_time=True)
    beamline.RE.waiting_hook = None
    beamline.raman.exposure.put(30.0)
    yield beamline
    beamline.close()
    clock.reset()


@pytest.fixture(scope="module")
def refusing_beamline(tmp_path_factory):
    """One simulated beamline per module for tests that only check that a plan refuses an
    argument before any message: each test starts with an empty ``messages`` list."""
    beamline = _simulated_beamline(tmp_path_factory.mktemp("refusing"), speedup=200, seed=1)
    beamline.messages = []
    beamline.RE.msg_hook = beamline.messages.append
    yield beamline
    beamline.close()
    clock.reset()


@pytest.fixture
def refusing(refusing_beamline):
    """``refusing_beamline`` with its message record emptied (and its RunEngine idle)."""
    refusing_beamline.messages.clear()
    assert refusing_beamline.RE.state == "idle"
    return refusing_beamline


@pytest.fixture
def sim_beamline(tmp_path):
    """The simulated beamline (stage, Raman, impedance on emulators) at a 200x clock."""
    beamline = _simulated_beamline(tmp_path, speedup=200, seed=1)
    messages = []
    beamline.RE.msg_hook = messages.append
    beamline.messages = messages
    yield beamline
    beamline.close()
    clock.reset()


@pytest.fixture
def fast_beamline(tmp_path):
    """The simulated beamline with live analysis at 1500x, 30 s Raman exposures, no move bars."""
    beamline = _simulated_beamline(tmp_path, speedup=1500, seed=7)
    beamline.RE.waiting_hook = None
    beamline.raman.exposure.put(30.0)
    yield beamline
    beamline.close()
    clock.reset()
