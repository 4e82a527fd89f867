"""Fixtures for integration tests: the Linkam emulator on a pty or TCP, and a stage on it."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from bluesky import RunEngine

from insitu import clock
from insitu.devices.linkam import LinkamStage
from insitu.sim.linkam_t95 import LinkamT95Emulator

LINKAM_SPEEDUP = 100.0


@dataclass
class LinkamRig:
    """An emulator serving on one transport, and a stage connected to it."""

    emulator: LinkamT95Emulator
    stage: LinkamStage
    address: str
    transport: str


@pytest.fixture
def linkam_fast_clock() -> Iterator[None]:
    """Run experiment time 100x faster; restore real time afterwards."""
    clock.set_speedup(LINKAM_SPEEDUP)
    try:
        yield
    finally:
        clock.set_speedup(1.0)


@pytest.fixture(params=["pty", "tcp"])
def linkam_transport(request: pytest.FixtureRequest) -> str:
    """Each test using it runs over a pseudo-terminal and over loopback TCP."""
    return request.param


def linkam_serve(emulator: LinkamT95Emulator, transport: str) -> str:
    """Serve ``emulator`` on ``transport`` ("pty" or "tcp") and return its VISA address."""
    if transport == "pty":
        return f"ASRL{emulator.serve_pty()}::INSTR"
    return f"TCPIP::127.0.0.1::{emulator.serve_tcp()}::SOCKET"


@pytest.fixture
def linkam_rig(linkam_fast_clock: None) -> Iterator[Callable[..., LinkamRig]]:
    """Factory: ``linkam_rig(transport="pty", stage_model="TS1500", **stage_options)``.

    Stage options default to what an emulator needs (no command spacing, short reply timeout,
    0.5 s poll). Everything made is destroyed and closed at teardown, stages first.
    """
    emulators: list[LinkamT95Emulator] = []
    stages: list[LinkamStage] = []

    def make(
        transport: str = "pty",
        stage_model: str = "TS1500",
        *,
        seed: int = 0,
        **stage_options: Any,
    ) -> LinkamRig:
        emulator = LinkamT95Emulator(stage_model, seed=seed)
        emulators.append(emulator)
        address = linkam_serve(emulator, transport)
        options: dict[str, Any] = {"min_command_interval": 0.0, "reply_timeout": 0.2}
        options.update(stage_options)
        stage = LinkamStage(address, name="linkam", stage_model=stage_model, **options)
        stages.append(stage)
        return LinkamRig(emulator, stage, address, transport)

    yield make
    for stage in stages:
        stage.destroy()
    for emulator in emulators:
        emulator.close()


@pytest.fixture(scope="module")
def linkam_run_engine() -> RunEngine:
    """A plain RunEngine (no subscriptions) shared by a test module."""
    return RunEngine({})


class DocumentCollector:
    """Subscriber that keeps every (name, doc) it receives and the thread it came from."""

    def __init__(self):
        self.documents: list[tuple[str, dict]] = []
        self.threads: set[str] = set()

    def __call__(self, name, doc):
        self.threads.add(threading.current_thread().name)
        self.documents.append((name, doc))

    def stream(self, stream_name: str) -> list[dict]:
        descriptors = {
            doc["uid"]
            for name, doc in self.documents
            if name == "descriptor" and doc["name"] == stream_name
        }
        return [
            doc
            for name, doc in self.documents
            if name == "event" and doc["descriptor"] in descriptors
        ]


@pytest.fixture
def collect_documents() -> type[DocumentCollector]:
    """Factory of document subscribers: ``collector = collect_documents()``."""
    return DocumentCollector


@pytest.fixture
def sim_config(tmp_path) -> str:
    """A beamline config file for the CLI: the simulated beamline at 200x, its catalog and
    metadata under ``tmp_path``."""
    config = tmp_path / "beamline.yaml"
    config.write_text(
        f"catalog:\n  location: {tmp_path / 'data'}\nmetadata_dir: {tmp_path / 'md'}\n"
        "simulation:\n  speedup: 200\n"
    )
    return str(config)
