"""Protocol tests against the emulators (default) or against real controllers (opt-in).

``--device-address KIND=ADDRESS`` (repeatable; KIND ``linkam``, ``labspec6`` or ``term``) points
the tests of that instrument at a real controller instead of an emulator, as pymeasure's
``--device-address`` does. Without it nothing changes. See ``docs/real_instruments.md``.

Pass ``tests/protocol`` (or a file in it) on the command line: pytest reads these options only
from the conftest files of the paths it is given.

What a test declares:

``pytest.mark.instrument(kind)``
    The instrument the module (or test) exercises, usually ``pytestmark`` of the module.
``pytest.mark.emulator_only(reason)``
    The test needs what only an emulator can do (fault injection, its command log or state, a
    sped-up clock, a simulated temperature or configuration): skipped, with the reason, when
    its instrument is real.
``pytest.mark.heats_stage``
    The test heats the Linkam stage (a ramp start, or a limit more than ``HEATING_MARGIN_C``
    above the current temperature): against a real stage it is skipped unless
    ``--allow-heating`` is given.

The fixtures ``linkam_address``, ``labspec6_address`` and ``term_address`` give a test its
instrument's address: the real one if given, else that of the module's ``<kind>_emulator``
fixture, which they start. The marker is not trusted alone: on a real Linkam every connection a
test opens on ``linkam_address`` goes through a :class:`HeatingGuard`, which refuses, before
sending, any command that would heat unless the test is ``heats_stage`` and ``--allow-heating``
was given.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from insitu.devices.linkam import LinkamProtocolError, decode_status_reply
from insitu.devices.transport import Transport

#: The instruments the protocol tests can talk to, and the address forms each driver takes.
ADDRESS_FORMS: dict[str, str] = {
    "linkam": "a VISA resource: 'ASRL/dev/ttyUSB0::INSTR' (serial, also 'ASRLCOM3::INSTR') or "
    "'TCPIP::host::port::SOCKET' (a serial-to-TCP adapter)",
    "labspec6": "'host:port' or 'TCPIP::host::port::SOCKET' (LabSpec's remote server, port 1234)",
    "term": "'host', 'host:port' or 'TCPIP::host::port::SOCKET' (Zahner Term, port 260)",
}
KINDS: tuple[str, ...] = tuple(ADDRESS_FORMS)

#: A Linkam limit more than this above the stage's last reading counts as heating.
HEATING_MARGIN_C = 5.0

_HERE = Path(__file__).resolve().parent
_REAL = pytest.StashKey[dict[str, str]]()
_CALL_FAILED = pytest.StashKey[bool]()
_LINKAM_SERIAL = re.compile(r"ASRL\S+::INSTR", re.IGNORECASE)
_LINKAM_TCP = re.compile(r"TCPIP\d*::[^:\s]+::(?P<port>\d+)::SOCKET", re.IGNORECASE)
_RAMP_STARTS = {b"S": "S (start a ramp)", b"H": "H (heat)", b"C": "C (cool: starts a ramp)"}
_REAL_TIME = "against a real instrument: real time, and the T95's 0.3 s between commands"


# --- the option -------------------------------------------------------------------------------
def _check_linkam_address(address: str) -> None:
    tcp = _LINKAM_TCP.fullmatch(address)
    if tcp is not None and 1 <= int(tcp.group("port")) <= 65535:
        return
    if tcp is None and _LINKAM_SERIAL.fullmatch(address):
        return
    raise ValueError(address)


def parse_device_address(value: str) -> tuple[str, str]:
    """Split one ``--device-address KIND=ADDRESS`` value and check the address's form.

    Only the form is checked (nothing is opened), against the forms the drivers take:
    ``LinkamT95`` (a VISA resource), ``parse_socket_address``, ``parse_term_address``.

    Raises
    ------
    argparse.ArgumentTypeError
        Naming the value and the allowed forms (pytest reports it as a usage error).
    """
    kind, separator, address = str(value).partition("=")
    kind, address = kind.strip().lower(), address.strip()
    if not separator or kind not in ADDRESS_FORMS:
        allowed = "; ".join(f"{name}=ADDRESS, {forms}" for name, forms in ADDRESS_FORMS.items())
        raise argparse.ArgumentTypeError(
            f"{value!r} is not KIND=ADDRESS with KIND one of {', '.join(KINDS)}; allowed: {allowed}"
        )
    try:
        if kind == "linkam":
            _check_linkam_address(address)
        elif kind == "labspec6":
            from insitu.devices.raman import parse_socket_address

            parse_socket_address(address)
        else:
            from insitu.devices.zahner import parse_term_address

            parse_term_address(address)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r}: {address!r} is not a {kind} address; {kind} takes {ADDRESS_FORMS[kind]}"
        ) from None
    return kind, address


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("real instruments", "protocol tests against real controllers")
    group.addoption(
        "--device-address",
        action="append",
        default=[],
        type=parse_device_address,
        metavar="KIND=ADDRESS",
        help="run tests/protocol against a real controller instead of its emulator; repeatable. "
        + "; ".join(f"{kind}: {forms}" for kind, forms in ADDRESS_FORMS.items()),
    )
    group.addoption(
        "--allow-heating",
        action="store_true",
        default=False,
        help="with a real linkam: also run the tests marked heats_stage (ramp starts, limits "
        f"more than {HEATING_MARGIN_C:g} C above the current temperature)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "instrument(kind): the instrument (linkam, labspec6, term) a protocol test exercises",
    )
    config.addinivalue_line(
        "markers",
        "emulator_only(reason): needs an emulator (faults, its log or state, a sped-up clock); "
        "skipped with the reason when --device-address makes its instrument real",
    )
    config.addinivalue_line(
        "markers",
        "heats_stage: heats the Linkam stage (a ramp start, or a limit more than "
        f"{HEATING_MARGIN_C:g} C above the current temperature); against a real stage only "
        "with --allow-heating",
    )
    real: dict[str, str] = {}
    for kind, address in config.getoption("device_address", default=None) or []:
        if kind in real:
            raise pytest.UsageError(
                f"--device-address {kind}= given twice ({real[kind]!r} and {address!r}); "
                "give each instrument once"
            )
        real[kind] = address
    workers = config.getoption("numprocesses", default=None)
    if real and workers and not hasattr(config, "workerinput"):
        raise pytest.UsageError(
            f"--device-address with -n {workers}: a real instrument takes one client at a "
            "time; run without pytest-xdist workers"
        )
    config.stash[_REAL] = real


def _real(config: pytest.Config) -> dict[str, str]:
    return config.stash.get(_REAL, {})


def pytest_report_header(config: pytest.Config) -> list[str]:
    real = _real(config)
    if not real:
        return []
    heating = "allowed" if config.getoption("allow_heating") else "not allowed (--allow-heating)"
    lines = [f"real instrument: {kind} at {address}" for kind, address in sorted(real.items())]
    return [*lines, f"heating a real stage: {heating}"]


# --- markers ----------------------------------------------------------------------------------
def _instrument_of(item: pytest.Item) -> str | None:
    marker = item.get_closest_marker("instrument")
    if marker is None:
        return None
    if len(marker.args) != 1 or marker.args[0] not in KINDS:
        raise pytest.UsageError(
            f"{item.nodeid}: use pytest.mark.instrument(kind), kind one of {', '.join(KINDS)}"
        )
    return marker.args[0]


def _emulator_only_reason(item: pytest.Item) -> str | None:
    marker = item.get_closest_marker("emulator_only")
    if marker is None:
        return None
    if len(marker.args) != 1 or not isinstance(marker.args[0], str) or not marker.args[0]:
        raise pytest.UsageError(f"{item.nodeid}: use pytest.mark.emulator_only('why')")
    return marker.args[0]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Check the markers; in real mode, skip what the real instrument must not or cannot run."""
    real = _real(config)
    allow_heating = config.getoption("allow_heating", default=False)
    for item in items:
        if not item.path.resolve().is_relative_to(_HERE):
            continue  # this hook sees the whole session's items
        kind = _instrument_of(item)
        reason = _emulator_only_reason(item)
        heats = item.get_closest_marker("heats_stage") is not None
        if (reason is not None or heats) and kind is None:
            raise pytest.UsageError(
                f"{item.nodeid} is marked emulator_only or heats_stage but names no instrument: "
                "mark it (or its module) pytest.mark.instrument(kind)"
            )
        if heats and kind != "linkam":
            raise pytest.UsageError(f"{item.nodeid}: heats_stage on a {kind} test")
        if kind not in real:
            continue  # an emulator, exactly as without --device-address
        where = f"the real {kind} at {real[kind]}"
        if reason is not None:
            item.add_marker(
                pytest.mark.skip(reason=f"emulator only, not run against {where}: {reason}")
            )
        elif heats and not allow_heating:
            item.add_marker(
                pytest.mark.skip(
                    reason=f"heats the stage (a ramp start or a limit more than "
                    f"{HEATING_MARGIN_C:g} C above the current temperature): not run against "
                    f"{where} without --allow-heating"
                )
            )
        else:
            item.add_marker(pytest.mark.allow_slow(_REAL_TIME))  # the fast tier's 5 s budget


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    if report.when == "call":
        item.stash[_CALL_FAILED] = report.failed  # for linkam_address's teardown
    return report


# --- the heating guard ------------------------------------------------------------------------
def heating_refusal(command: bytes, temperature: float | None) -> str | None:
    """Why sending the Linkam ``command`` would heat a real stage, or None if it would not.

    Every ramp start (``S``, ``H``, ``C``) heats, and so does a limit (``L1``) more than
    ``HEATING_MARGIN_C`` above the stage's last reading (no reading yet: refused too). Stop
    (``E``), hold (``O``), rates, pump settings and readings never heat.
    """
    if command in _RAMP_STARTS:
        return f"{_RAMP_STARTS[command]} heats the stage"
    if command.startswith(b"L1"):
        try:
            limit = int(command[2:]) / 10
        except ValueError:
            return None  # not a number: the controller ignores it
        if temperature is None:
            return f"limit {limit:g} C before any reading of the stage temperature"
        if limit > temperature + HEATING_MARGIN_C:
            return (
                f"limit {limit:g} C is more than {HEATING_MARGIN_C:g} C above the stage's "
                f"{temperature:g} C"
            )
    return None


class HeatingGuard:
    """A Linkam transport that fails the test instead of sending a command that would heat.

    Wraps the transport of a real controller, remembers the temperature of the last ``T``
    reply through it, and refuses what :func:`heating_refusal` names unless
    ``allow_heating``. Nothing is sent; the refusal is recorded in :attr:`refusals` (the
    ``linkam_address`` fixture fails the test at teardown even if the test swallowed it) and
    raised as a pytest failure, a BaseException no ``except Exception`` in a driver catches.
    """

    def __init__(self, transport: Transport, *, allow_heating: bool = False) -> None:
        self._transport = transport
        self.address = transport.address
        self.allow_heating = allow_heating
        self.temperature: float | None = None
        self.refusals: list[str] = []
        self._last_command: bytes | None = None

    def write(self, data: bytes | str) -> None:
        command = (data.encode("latin-1") if isinstance(data, str) else bytes(data)).rstrip(b"\r")
        reason = None if self.allow_heating else heating_refusal(command, self.temperature)
        if reason is not None:
            message = (
                f"refused to send {command!r} to the real Linkam at {self.address}: {reason}. "
                "A test that heats the stage must be marked heats_stage, and runs against a "
                "real stage only with --allow-heating (docs/real_instruments.md)"
            )
            self.refusals.append(message)
            pytest.fail(message, pytrace=False)
        self._last_command = command
        self._transport.write(data)

    def read_line(self) -> bytes:
        line = self._transport.read_line()
        if self._last_command == b"T":
            try:
                self.temperature = decode_status_reply(line).temperature
            except LinkamProtocolError:
                pass  # the driver reports it; the last good reading stays the reference
        return line

    def discard_input(self) -> None:
        self._transport.discard_input()

    def close(self) -> None:
        self._transport.close()


@pytest.fixture
def linkam_heating_guard() -> type[HeatingGuard]:
    """The guard class put on a real Linkam's transport (for the tests of the guard itself)."""
    return HeatingGuard


# --- addresses --------------------------------------------------------------------------------
def _emulator(request: pytest.FixtureRequest, kind: str):
    """The module's ``<kind>_emulator`` fixture (started only in emulator mode)."""
    return request.getfixturevalue(f"{kind}_emulator")


def _heats_and_allowed(request: pytest.FixtureRequest) -> bool:
    return request.node.get_closest_marker("heats_stage") is not None and bool(
        request.config.getoption("allow_heating")
    )


@pytest.fixture
def linkam_address(request: pytest.FixtureRequest, monkeypatch) -> Iterator[str]:
    """VISA address of the Linkam: the real controller's, or the module's linkam_emulator's.

    With a real controller, every LinkamT95 (so every LinkamStage) the test opens on this
    address talks through a :class:`HeatingGuard`.
    """
    real = _real(request.config).get("linkam")
    if real is None:
        emulator = _emulator(request, "linkam")
        yield f"TCPIP::127.0.0.1::{emulator.serve_tcp()}::SOCKET"
        return
    from insitu.devices.linkam import _driver

    allow = _heats_and_allowed(request)
    guards: list[HeatingGuard] = []
    open_transport = _driver.open_transport

    def guarded_open_transport(address: str, **options):
        transport = open_transport(address, **options)
        if address != real:
            return transport
        guard = HeatingGuard(transport, allow_heating=allow)
        guards.append(guard)
        return guard

    monkeypatch.setattr(_driver, "open_transport", guarded_open_transport)
    yield real
    refusals = [message for guard in guards for message in guard.refusals]
    if refusals and not request.node.stash.get(_CALL_FAILED, False):
        pytest.fail("; ".join(refusals), pytrace=False)  # the test swallowed the refusal


@pytest.fixture
def linkam_connect(request: pytest.FixtureRequest, linkam_address: str) -> Iterator[Callable]:
    """Factory: ``linkam_connect(**options)`` opens a LinkamT95 on the test's Linkam.

    No command spacing on an emulator; the driver's 0.3 s on a real controller. Every driver
    is closed at teardown; after a heating test on a real stage, the heater is switched off
    (``E``) whatever the test's outcome.
    """
    from insitu.devices.linkam import LinkamT95

    is_real = "linkam" in _real(request.config)
    drivers: list[LinkamT95] = []

    def connect(**options) -> LinkamT95:
        if not is_real:
            options.setdefault("min_command_interval", 0.0)
        driver = LinkamT95(linkam_address, **options)
        drivers.append(driver)
        return driver

    yield connect
    for driver in drivers:
        driver.close()
    if is_real and _heats_and_allowed(request):
        with LinkamT95(linkam_address) as driver:
            driver.stop()


@pytest.fixture
def linkam_driver(linkam_connect: Callable):
    """A LinkamT95 connected to the test's Linkam (see ``linkam_connect``)."""
    return linkam_connect()


@pytest.fixture
def labspec6_address(request: pytest.FixtureRequest) -> str:
    """``host:port`` of LabSpec 6: the real server's, or the module's labspec6_emulator's."""
    real = _real(request.config).get("labspec6")
    if real is not None:
        return real
    return f"127.0.0.1:{_emulator(request, 'labspec6').serve_tcp()}"


@pytest.fixture
def term_address(request: pytest.FixtureRequest) -> str:
    """``host:port`` of Zahner Term: the real one's, or the module's term_emulator's."""
    real = _real(request.config).get("term")
    if real is not None:
        return real
    emulator = _emulator(request, "term")
    port = emulator.port if emulator.port is not None else emulator.serve_tcp(0)
    return f"127.0.0.1:{port}"
