"""Contract of insitu.compat: every private internal it touches still exists and still works.

Each test builds the library's own objects (no sockets, no servers: fakes for the tiled client
and the Term socket, in-process 0MQ addresses) and reaches them through the compat functions,
so a library release that moves or renames one of them fails here, by name, before anything
that uses it runs. The version gate of each compat module is checked with a faked installed
version.
"""

from __future__ import annotations

import gc
import importlib.metadata
import importlib.util
import inspect
import re
import subprocess
import sys
import threading
import tomllib
import warnings
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pyarrow
import pytest
import thales_remote.connection as thales_connection
import zmq
from bluesky_queueserver.manager.comms import ZMQCommSendThreads
from bluesky_queueserver.manager.output_streaming import ReceiveConsoleOutput, ReceiveSystemInfo
from bluesky_queueserver_api.zmq import REManagerAPI
from bluesky_tiled_plugins import TiledWriter
from bluesky_tiled_plugins.writing import tiled_writer
from thales_remote.connection import ThalesRemoteConnection

from insitu.compat import bluesky_queueserver as queueserver_compat
from insitu.compat import bluesky_run_engine as run_engine_compat
from insitu.compat import bluesky_tiled_plugins as tiled_compat
from insitu.compat import check_version, major_minor
from insitu.compat import queueserver_api as queueserver_api_compat
from insitu.compat import thales_remote as thales_compat

COMPAT_MODULES = [
    tiled_compat,
    thales_compat,
    queueserver_api_compat,
    queueserver_compat,
    run_engine_compat,
]
PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def _normalized(distribution: str) -> str:
    return re.sub(r"[-_.]+", "-", distribution).lower()


def _name(module: ModuleType) -> str:
    return module.__name__.rsplit(".", 1)[-1]


# ---- version gate ------------------------------------------------------------------------------


def test_check_version_accepts_a_patch_release_only():
    assert check_version("somelib", "2.0.12", module="m", installed="2.0.12") == "2.0.12"
    assert check_version("somelib", "2.0.12", module="m", installed="2.0.99") == "2.0.99"
    assert check_version("somelib", "0.0.13", module="m", installed="0.0.14") == "0.0.14"
    for installed in ("2.1.0", "3.0.12", "1.9.0", "not-a-version"):
        with pytest.raises(ImportError) as info:
            check_version("somelib", "2.0.12", module="insitu.compat.somelib", installed=installed)
        message = str(info.value)
        for part in ("somelib", installed, "2.0.x", "2.0.12", "insitu.compat.somelib"):
            assert part in message


def test_major_minor():
    assert major_minor("2.0.12") == (2, 0)
    assert major_minor("1.2.8.post1") == (1, 2)
    assert major_minor("0.0.13") == (0, 0)
    with pytest.raises(ValueError, match="major"):
        major_minor("dev")


@pytest.mark.parametrize("module", COMPAT_MODULES, ids=_name)
def test_written_for_is_the_pin_in_pyproject(module):
    """The version a compat module was written for is the one pyproject.toml installs."""
    dependencies = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    pins = {}
    for requirement in dependencies:
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)(\[[^\]]*\])?==(\S+)", requirement.strip())
        if match:
            pins[_normalized(match.group(1))] = match.group(3)
    assert pins.get(_normalized(module.DISTRIBUTION)) == module.WRITTEN_FOR
    assert major_minor(importlib.metadata.version(module.DISTRIBUTION)) == major_minor(
        module.WRITTEN_FOR
    )


def _load_copy(module: ModuleType, monkeypatch, installed: str) -> ModuleType:
    """Execute a fresh copy of ``module`` while its library reports version ``installed``."""
    real_version = importlib.metadata.version

    def version(distribution: str) -> str:
        if _normalized(distribution) == _normalized(module.DISTRIBUTION):
            return installed
        return real_version(distribution)

    monkeypatch.setattr(importlib.metadata, "version", version)
    spec = importlib.util.spec_from_file_location(f"_compat_probe_{_name(module)}", module.__file__)
    copy = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(copy)
    return copy


@pytest.mark.parametrize("module", COMPAT_MODULES, ids=_name)
@pytest.mark.parametrize("bump", ["major", "minor"])
def test_import_refuses_another_major_minor(module, bump, monkeypatch):
    major, minor = major_minor(module.WRITTEN_FOR)
    installed = f"{major + 1}.{minor}.0" if bump == "major" else f"{major}.{minor + 1}.0"
    with pytest.raises(ImportError) as info:
        _load_copy(module, monkeypatch, installed)
    message = str(info.value)
    for part in (module.DISTRIBUTION, installed, f"{major}.{minor}.x", module.WRITTEN_FOR):
        assert part in message


@pytest.mark.parametrize("module", COMPAT_MODULES, ids=_name)
def test_import_accepts_a_patch_release(module, monkeypatch):
    major, minor = major_minor(module.WRITTEN_FOR)
    copy = _load_copy(module, monkeypatch, f"{major}.{minor}.999")
    assert copy.WRITTEN_FOR == module.WRITTEN_FOR


# ---- bluesky-tiled-plugins ---------------------------------------------------------------------


class _Node:
    """Stands in for a tiled client node: containers made on request, closing counted."""

    def __init__(self, key: str = "", uri: str = "fake://catalog") -> None:
        self.key = key
        self.uri = uri
        self.item = {"id": key}
        self.metadata: dict = {}
        self.children: dict[str, _Node] = {}
        self.closed = 0

    def include_data_sources(self) -> _Node:
        return self

    def create_container(self, key, metadata=None, specs=None, access_tags=None) -> _Node:
        node = _Node(key, f"{self.uri}/{key}")
        node.metadata = dict(metadata or {})
        self.children[key] = node
        return node

    @property
    def base(self) -> _Node:
        return self

    def update_metadata(self, metadata=None, drop_revision=False) -> None:
        self.metadata.update(metadata or {})

    def close_stream(self) -> None:
        self.closed += 1


START = {"uid": "run-1", "time": 0.0}
DESCRIPTOR = {
    "uid": "desc-1",
    "name": "primary",
    "run_start": "run-1",
    "time": 0.5,
    "data_keys": {"x": {"dtype": "number", "shape": [], "source": "sim"}},
}
EVENT = {
    "uid": "event-1",
    "descriptor": "desc-1",
    "seq_num": 1,
    "time": 1.0,
    "data": {"x": 2.0},
    "timestamps": {"x": 1.0},
}
ROW = {"seq_num": 1, "time": 1.0, "x": 2.0, "ts_x": 1.0}


def _run_writer_with_one_cached_event(writes: list) -> tuple:
    client = _Node()
    run_writer = tiled_compat.RunWriter(client, batch_size=100)
    run_writer._write_internal_data = lambda cache, desc_node: writes.append(
        (list(cache), desc_node)
    )
    run_writer.start(START)
    run_writer.descriptor(DESCRIPTOR)
    run_writer.event(EVENT)
    return client, run_writer


def test_run_writer_is_the_class_tiled_writer_uses():
    assert tiled_compat.RunWriter is tiled_writer._RunWriter
    assert tiled_compat._ConditionalBackup is tiled_writer._ConditionalBackup
    source = inspect.getsource(TiledWriter._factory)
    assert "_RunWriter(" in source and "_ConditionalBackup(" in source


def test_per_run_tiled_writer_routes_each_run_to_make_run_writer():
    """``TiledWriter._factory`` is still the RunRouter's factory, and the settings reach it."""
    made = []

    class Recording(tiled_compat.PerRunTiledWriter):
        def make_run_writer(self, start_doc):
            run_writer = super().make_run_writer(start_doc)
            made.append((start_doc["uid"], run_writer))
            return run_writer

    client = _Node()
    writer = Recording(client, batch_size=7, max_array_size=11)
    writer("start", dict(START))
    assert [uid for uid, _ in made] == ["run-1"]
    run_writer = made[0][1]
    assert isinstance(run_writer, tiled_compat.RunWriter)
    assert run_writer.root_node is client.children["run-1"]  # through the normalizer to it
    assert (run_writer._batch_size, run_writer._max_array_size) == (7, 11)


def test_run_writer_options_are_what_tiled_writer_gives_its_run_writers():
    writer = TiledWriter(_Node(), batch_size=7, max_array_size=11)
    options = tiled_compat.run_writer_options(writer)
    expected = {"batch_size": 7, "max_array_size": 11, "validate": False, "ignore_errors": []}
    assert options == expected
    parameters = inspect.signature(tiled_compat.RunWriter.__init__).parameters
    assert set(options) <= set(parameters)
    assert writer._normalizer is tiled_writer.RunNormalizer  # what run_callback reads


def test_run_callback_builds_what_tiled_writers_own_factory_builds(tmp_path):
    writer = TiledWriter(_Node(), backup_directory=str(tmp_path))
    (theirs,), _ = writer._factory("start", dict(START))
    ours = tiled_compat.run_callback(writer, tiled_compat.RunWriter(writer.client))
    for callback in (theirs, ours):
        assert isinstance(callback, tiled_writer._ConditionalBackup)
        assert isinstance(callback.primary_callback, tiled_writer.RunNormalizer)
        assert [type(c) for c in callback.backup_callbacks] == [tiled_writer.JSONLinesWriter]
    plain = TiledWriter(_Node(), normalizer=None)
    run_writer = tiled_compat.RunWriter(plain.client)
    assert tiled_compat.run_callback(plain, run_writer) is run_writer
    assert plain._factory("start", dict(START))[0][0].__class__ is tiled_compat.RunWriter


def test_write_cached_events_writes_the_cache_as_the_run_writers_stop_does():
    ours: list = []
    _, run_writer = _run_writer_with_one_cached_event(ours)
    node = tiled_compat.stream_nodes(run_writer)["primary"]
    assert run_writer._internal_data_cache == {"primary": [ROW]}
    assert tiled_compat.write_cached_events(run_writer) == 1
    assert ours == [([ROW], node)]
    assert tiled_compat.write_cached_events(run_writer) == 0  # the cache is empty now

    theirs: list = []
    client, run_writer = _run_writer_with_one_cached_event(theirs)
    run_writer.stop({"uid": "stop-1", "run_start": "run-1", "time": 2.0, "exit_status": "success"})
    assert theirs == [([ROW], tiled_compat.stream_nodes(run_writer)["primary"])]
    assert client.children["run-1"].closed == 1
    parameters = list(inspect.signature(tiled_compat.RunWriter._write_internal_data).parameters)
    assert parameters[0] == "self" and parameters[2] == "desc_node"


def test_stream_nodes_are_keyed_by_stream_name_and_descriptor_uid():
    _, run_writer = _run_writer_with_one_cached_event([])
    nodes = tiled_compat.stream_nodes(run_writer)
    assert nodes is run_writer._desc_nodes
    assert nodes["primary"] is nodes["desc-1"]
    assert nodes["primary"].key == "primary"
    assert isinstance(run_writer._internal_tables, dict)
    assert isinstance(run_writer._internal_arrays, dict)
    run_writer._internal_tables["primary"] = table = _Node("table")
    run_writer._internal_arrays["primary/x"] = array = _Node("array")
    stream = nodes["primary"]  # listed twice: under its name and its descriptor's uid
    assert tiled_compat.stream_tree_nodes(run_writer) == [table, array, stream, stream]


# ---- thales_remote -----------------------------------------------------------------------------


class _FakeTermSocket:
    """Accepts the connection and the registration, then fails every read (the link drops)."""

    def __init__(self, *args) -> None:
        self.address = None
        self.sent = bytearray()
        self.shut = []
        self.closed = False

    def connect(self, address) -> None:
        self.address = address

    def sendall(self, data) -> None:
        self.sent += data

    def recv(self, size) -> bytes:
        raise OSError("link down")

    def shutdown(self, how) -> None:
        self.shut.append(how)

    def close(self) -> None:
        self.closed = True


def test_thales_connection_internals(monkeypatch):
    sockets: list[_FakeTermSocket] = []

    def make_socket(*args):
        sockets.append(_FakeTermSocket(*args))
        return sockets[-1]

    monkeypatch.setattr(
        thales_connection,
        "socket",
        SimpleNamespace(socket=make_socket, AF_INET=2, SOCK_STREAM=1),
    )
    monkeypatch.setattr(thales_connection, "time", SimpleNamespace(sleep=lambda seconds: None))

    fresh = ThalesRemoteConnection()
    assert fresh._term_port == 260
    assert thales_compat.thales_socket(fresh) is None
    assert thales_compat.receiver_thread(fresh) is None

    connection = ThalesRemoteConnection()
    thales_compat.set_term_port(connection, 12345)
    assert connection.connectToTerm("term.example", "ScriptRemote") is True
    (fake,) = sockets
    assert fake.address == ("term.example", 12345)  # the port set is the one connected to
    assert thales_compat.thales_socket(connection) is fake
    assert connection.isConnectedToTerm()
    receiver = thales_compat.receiver_thread(connection)
    assert isinstance(receiver, threading.Thread)
    receiver.join(timeout=2.0)  # its read failed: it ended
    assert not receiver.is_alive()

    thales_compat.close_socket(connection)
    assert fake.closed
    assert thales_compat.thales_socket(connection) is None
    assert not connection.isConnectedToTerm()


# ---- bluesky-queueserver-api and bluesky-queueserver ------------------------------------------


def test_queueserver_zmq_contexts_are_all_found():
    """The request client's and both monitors' contexts exist at init and are all destroyed."""
    api = REManagerAPI(
        zmq_control_addr="inproc://insitu-compat-control",
        zmq_info_addr="inproc://insitu-compat-info",
        timeout_recv=0.1,
    )
    try:
        client = queueserver_api_compat.request_client(api)
        assert isinstance(client, ZMQCommSendThreads)
        assert isinstance(queueserver_compat.comm_context(client), zmq.Context)
        receivers = [
            queueserver_api_compat.monitor_receiver(api.console_monitor),
            queueserver_api_compat.monitor_receiver(api.system_info_monitor),
        ]
        assert [type(r) for r in receivers] == [ReceiveConsoleOutput, ReceiveSystemInfo]
        for receiver in receivers:
            assert isinstance(queueserver_compat.receiver_socket(receiver), zmq.Socket)
    finally:
        api.close()
        contexts = queueserver_api_compat.zmq_contexts(api)
        for context in contexts:
            context.destroy(linger=0)
    assert len({id(context) for context in contexts}) == 3
    assert all(isinstance(context, zmq.Context) and context.closed for context in contexts)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del api, client, receivers
        gc.collect()
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]


# ---- bluesky RunEngine internals of held time, queueserver handlers refused -------------------


def test_the_run_engine_commands_and_status_groups_held_time_wraps_are_there():
    import bluesky.plan_stubs as bps
    from bluesky import RunEngine
    from ophyd.sim import SynAxis

    engine = RunEngine({})
    for name in ("sleep", "wait", "wait_for"):
        assert callable(run_engine_compat.command(engine, name)), name
    seen = []
    original = run_engine_compat.command(engine, "wait")

    async def wait(msg):
        seen.append(run_engine_compat.statuses_of_group(engine, msg.kwargs.get("group")))
        return await original(msg)

    engine.register_command("wait", wait)
    engine(bps.mv(SynAxis(name="axis"), 1.0))
    assert seen and len(seen[0]) == 1 and seen[0][0].done


def _this_function() -> str:
    return inspect.stack()[1].function


def test_plan_stubs_keep_their_caller_unformatted_and_warn_as_bluesky_does_if_never_iterated(
    monkeypatch,
):
    import bluesky.plan_stubs as bps
    from bluesky.utils import Plan

    # bluesky's own methods back after the test (a beamline assembled later patches again)
    monkeypatch.setattr(Plan, "__init__", Plan.__init__)
    monkeypatch.setattr(Plan, "__del__", Plan.__del__)

    # What the lighter check relies on: the wrapper's two slots, and every way of iterating a
    # plan clearing its recorded stack (then nothing is formatted or warned).
    assert Plan.__slots__ == ("_iter", "_stack")
    for method in (Plan.__iter__, Plan.__next__, Plan.send, Plan.throw, Plan.close):
        assert "self._stack = None" in inspect.getsource(method), method
    run_engine_compat.light_plan_stacks()
    run_engine_compat.light_plan_stacks()  # idempotent

    def forgotten():
        bps.sleep(1.0)  # never iterated

    def runtime_warnings(action) -> list[str]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            action()
            gc.collect()
        return [str(w.message) for w in caught if w.category is RuntimeWarning]

    (message,) = runtime_warnings(forgotten)
    assert f'File "{__file__}"' in message
    assert "in forgotten\n    bps.sleep(1.0)  # never iterated\n" in message
    assert message.endswith(
        "RuntimeWarning: plan `sleep` was never iterated, did you mean to use `yield from`?"
    )
    assert runtime_warnings(lambda: list(bps.sleep(1.0))) == []
    # a plan made at a script's top level (no caller's caller) records no frame, and warns
    script = (
        "import warnings, gc\n"
        "from insitu.compat.bluesky_run_engine import light_plan_stacks\n"
        "light_plan_stacks()\n"
        "from bluesky.utils import Plan\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    plan = Plan(iter, ())\n"
        "    assert plan._stack == ([], 'iter'), plan._stack\n"
        "    del plan\n"
        "    gc.collect()\n"
        "print(len(caught), str(caught[0].message).strip())\n"
    )
    shallow = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert shallow.returncode == 0, shallow.stderr
    assert shallow.stdout.startswith("1 RuntimeWarning: plan `iter` was never iterated")
    wrapped = bps.sleep(1.0)
    assert isinstance(wrapped, Plan)  # still bluesky's wrapper, with its methods
    calls, name = wrapped._stack  # where it was called, not yet formatted
    assert name == "sleep" and calls[-1][:3] == (__file__, calls[-1][1], _this_function())
    wrapped.close()


def test_the_queueserver_handlers_insitu_refuses_are_where_it_expects():
    from bluesky_queueserver.manager.manager import RunEngineManager

    from insitu.services.queue_manager import REFUSED_METHODS

    for method in REFUSED_METHODS:
        handler = getattr(RunEngineManager, queueserver_compat.handler_name(method), None)
        assert callable(handler), method

    class Manager:
        async def _script_upload_handler(self, request):
            return {"success": True}

    queueserver_compat.deny_methods(Manager, {"script_upload": "no"})
    import asyncio

    reply = asyncio.run(Manager()._script_upload_handler({}))
    assert reply == {"success": False, "msg": "script_upload is refused by this station: no"}
    with pytest.raises(AttributeError, match="cannot refuse 'nope'"):
        queueserver_compat.deny_methods(Manager, {"nope": "x"})


def test_table_rows_go_through_append_with_retry_which_the_idempotent_writer_replaces():
    """``_write_internal_data`` appends each table batch via ``_append_with_retry``."""
    parameters = list(inspect.signature(tiled_writer._RunWriter._append_with_retry).parameters)
    assert parameters == ["self", "df_client", "table", "desc_name"]
    source = inspect.getsource(tiled_writer._RunWriter._write_internal_data)
    assert "self._append_with_retry(df_client, table, desc_name)" in source
    assert "_append_with_retry" in vars(tiled_compat.IdempotentRunWriter)
    writer = tiled_compat.PerRunTiledWriter(_Node())
    assert isinstance(writer.make_run_writer(dict(START)), tiled_compat.IdempotentRunWriter)


def test_stream_tables_are_created_through_the_node_the_idempotent_writer_hands_in():
    """``_write_internal_data(data_cache, desc_node)`` creates a stream's table with
    ``desc_node.create_appendable_table`` and nothing else; tiled's creation takes no order."""
    parameters = list(inspect.signature(tiled_writer._RunWriter._write_internal_data).parameters)
    assert parameters == ["self", "data_cache", "desc_node"]
    source = inspect.getsource(tiled_writer._RunWriter._write_internal_data)
    assert "desc_node.create_appendable_table(" in source
    assert "_write_internal_data" in vars(tiled_compat.IdempotentRunWriter)
    created = {}

    class Node:
        def new(self, family, sources, **kwargs):
            created.update(family=family, parameters=sources[0].parameters, **kwargs)
            return "table"

        def create_appendable_table(self, **kwargs):
            created.update(plain=kwargs)
            return "plain table"

    node = tiled_compat._SeqNumOrderedNode(Node())
    with_seq = pyarrow.schema([("seq_num", pyarrow.int64()), ("time", pyarrow.float64())])
    assert node.create_appendable_table(with_seq, key="internal", metadata={"a": 1}) == "table"
    assert created["parameters"] == {"order_by_args": [{"column": "seq_num", "direction": "asc"}]}
    assert created["key"] == "internal" and created["metadata"] == {"a": 1}
    without = pyarrow.schema([("time", pyarrow.float64())])
    assert node.create_appendable_table(without, key="internal_1") == "plain table"
    assert created["plain"]["key"] == "internal_1"
