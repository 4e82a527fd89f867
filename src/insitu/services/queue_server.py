"""``insitu serve queue``: Redis (if none answers) and a bluesky-queueserver RE Manager.

The RE Manager (``start-re-manager``) runs the beamline's IPython profile,
``profiles/profile_insitu/startup``, as its startup directory, with the beamline config given
to the profile through ``$INSITU_CONFIG``. Its queue and history live in Redis under a key
prefix, so they survive a restart of the manager; several stations can share one Redis (one
prefix each) or use their own.

Files the manager needs:

- ``user_group_permissions.yaml`` in the startup directory (which plans and devices the
  ``primary`` group may use);
- ``existing_plans_and_devices.yaml``, the plans and devices of the worker's namespace. It is not
  committed: the manager writes it, into this station's ``--state-dir``, each time the
  environment opens (``--update-existing-plans-devices ENVIRONMENT_OPEN``). The list depends on
  the station's config (its devices), would go stale in the repository whenever a plan's
  signature changes, and generating it beforehand (``qserver-list-plans-devices``) would
  build the beamline, i.e. connect to the instruments, a second time. Until the environment
  has been opened once the manager knows no plans (``insitu serve queue --open`` opens it).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from insitu.services.loopback import require_loopback
from insitu.services.queue_manager import ADMIN_METHODS_ENV
from insitu.services.redis_server import DEFAULT_REDIS, RedisAddress, start_redis

__all__ = [
    "DEFAULT_ZMQ_CONTROL",
    "DEFAULT_ZMQ_INFO",
    "add_serve_parser",
    "default_startup_dir",
    "environment_ready",
    "manager_api",
    "manager_command",
    "serve_queue",
]

#: Loopback by default: the control socket accepts any client that can reach it (see the docs
#: for exposing it with queueserver's 0MQ encryption keys).
DEFAULT_ZMQ_CONTROL = "tcp://127.0.0.1:60615"
#: bluesky-queueserver's CurveZMQ server key (an environment variable, never an argument).
ZMQ_SERVER_KEY_ENV = "QSERVER_ZMQ_PRIVATE_KEY_FOR_SERVER"
DEFAULT_ZMQ_INFO = "tcp://127.0.0.1:60625"
_WAIT_S = 60.0


def default_startup_dir() -> Path:
    """The repository's ``profiles/profile_insitu/startup`` (next to ``src/`` of this checkout)."""
    return Path(__file__).resolve().parents[3] / "profiles" / "profile_insitu" / "startup"


def _default_prefix(station: str) -> str:
    return "qs_" + re.sub(r"[^A-Za-z0-9_]+", "_", station)


def manager_command(
    *,
    startup_dir: Path,
    state_dir: Path,
    redis: RedisAddress,
    redis_prefix: str,
    zmq_control: str,
    zmq_info: str,
) -> list[str]:
    """The RE Manager's command line (``start-re-manager``'s options, run with this interpreter
    through :mod:`insitu.services.queue_manager`)."""
    return [
        sys.executable,
        "-m",
        "insitu.services.queue_manager",  # queueserver's start_manager, unsafe methods refused
        "--startup-dir",
        str(startup_dir),
        "--user-group-permissions",
        str(startup_dir / "user_group_permissions.yaml"),
        "--existing-plans-devices",
        str(state_dir / "existing_plans_and_devices.yaml"),
        "--update-existing-plans-devices",
        "ENVIRONMENT_OPEN",
        "--redis-addr",
        redis.for_manager,
        "--redis-name-prefix",
        redis_prefix,
        "--zmq-control-addr",
        zmq_control,
        "--zmq-info-addr",
        zmq_info,
        "--zmq-publish-console",
        "ON",
    ]


@contextmanager
def manager_api(zmq_control: str, *, timeout: float = 5.0) -> Iterator[Any]:
    """A bluesky-queueserver-api ``REManagerAPI`` (0MQ), closed on exit with its 0MQ context.

    ``REManagerAPI.close()`` closes its sockets but leaves the ``zmq.Context`` objects of its
    request client and of its console and system-info monitors (made at init) to the garbage
    collector, which pyzmq reports as ResourceWarnings; they are destroyed here (found through
    :func:`insitu.compat.queueserver_api.zmq_contexts`: they are private).
    """
    from bluesky_queueserver_api.zmq import REManagerAPI

    from insitu.compat.queueserver_api import zmq_contexts

    api = REManagerAPI(zmq_control_addr=zmq_control, timeout_recv=timeout)
    try:
        yield api
    finally:
        api.close()
        for context in zmq_contexts(api):
            context.destroy(linger=0)


def _wait_for_manager(manager: subprocess.Popen, zmq_control: str) -> None:
    with manager_api(zmq_control) as api:
        deadline = time.monotonic() + _WAIT_S
        while True:
            if manager.poll() is not None:
                raise RuntimeError(f"the RE Manager exited with code {manager.returncode}")
            try:
                api.status()
                return
            except api.RequestTimeoutError:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"the RE Manager does not answer at {zmq_control} after {_WAIT_S:.0f} s"
                    ) from None


def environment_ready(status: dict) -> bool:
    """Whether an RE Manager ``status`` says its environment is open and takes plans.

    Between the environment opening and the manager's next poll of the worker, ``re_state``
    is None and ``queue_start`` fails with "Run Engine is not found in the RE Worker
    environment": the environment counts as open only once the manager has that state.
    """
    return (
        status["worker_environment_exists"]
        and status["manager_state"] == "idle"
        and status["re_state"] is not None
    )


def _open_environment(zmq_control: str) -> None:
    with manager_api(zmq_control) as api:
        if not api.status()["worker_environment_exists"]:
            api.environment_open()
        api.wait_for_condition(environment_ready, timeout=300)


def _flush_catalog(api) -> None:
    """Have an idle worker store every pending document (its ``flush_catalog``) before the
    environment closes: the queueserver kills a closing worker after 0.5 s."""
    from bluesky_queueserver_api import BFunc

    status = api.status()
    if not (status["worker_environment_exists"] and status["manager_state"] == "idle"):
        return
    try:
        task = api.function_execute(BFunc("flush_catalog"), run_in_background=True)
        api.wait_for_completed_task(task["task_uid"], timeout=150)
        result = api.task_result(task["task_uid"])["result"]
        if not result.get("success", False):
            print(f"insitu serve queue: flushing the catalog failed: {result}", file=sys.stderr)
    except (api.RequestFailedError, TimeoutError) as error:
        print(f"insitu serve queue: could not flush the catalog: {error}", file=sys.stderr)


def _abort_running_plan(api) -> None:
    """Abort a running or paused plan so that its own cleanup parks the stage.

    ``manager_stop`` refuses while a plan runs, and its ``safe_off`` option kills the worker:
    no plan cleanup, no safe exit, a stage left at whatever it was doing. Aborting first runs
    the plan's ``parked_on_exit`` (the stop document says ``abort``, the item goes back to the
    queue's front), then the environment closes in order.
    """
    status = api.status()
    if status["manager_state"] not in ("executing_queue", "paused"):
        return
    print("insitu serve queue: aborting the running plan (the stage is parked)", file=sys.stderr)
    try:
        api.queue_stop()  # no next item once this one ends
    except api.RequestFailedError:
        pass  # not running the queue (a single item): nothing to stop
    if status["re_state"] == "running":
        api.re_pause(option="immediate")
        api.wait_for_condition(lambda s: s["re_state"] in ("paused", "idle"), timeout=60)
    if api.status()["re_state"] == "paused":
        api.re_abort()
    api.wait_for_idle(timeout=_WAIT_S)


def _stop_manager(manager: subprocess.Popen, zmq_control: str) -> None:
    """Stop in order: a running plan is aborted (it parks the stage), the worker closes the
    beamline and flushes the catalog. Only if that fails is the worker terminated."""
    with manager_api(zmq_control) as api:
        try:
            try:
                _abort_running_plan(api)
            except (api.RequestFailedError, TimeoutError) as error:
                print(f"insitu serve queue: could not abort the plan: {error}", file=sys.stderr)
            _flush_catalog(api)
            try:
                api.send_request(method="manager_stop", params={"option": "safe_on"})
            except api.RequestFailedError as refused:
                print(f"insitu serve queue: {refused}; stopping anyway", file=sys.stderr)
                api.send_request(method="manager_stop", params={"option": "safe_off"})
        except api.RequestTimeoutError:
            manager.terminate()
    try:
        manager.wait(_WAIT_S)
    except subprocess.TimeoutExpired:
        manager.terminate()
        manager.wait(10)


def serve_queue(
    *,
    config: str | os.PathLike | None = None,
    redis: str = DEFAULT_REDIS,
    redis_prefix: str | None = None,
    zmq_control: str = DEFAULT_ZMQ_CONTROL,
    zmq_info: str = DEFAULT_ZMQ_INFO,
    state_dir: str | os.PathLike | None = None,
    startup_dir: str | os.PathLike | None = None,
    open_environment: bool = False,
    admin_methods: bool = False,
) -> int:
    """Run the plan queue of one station until SIGINT/SIGTERM; return the exit code.

    Parameters
    ----------
    config : path, optional
        The station's beamline YAML (default: the simulated beamline), given to the profile
        as ``$INSITU_CONFIG``; its ``catalog`` says where runs go (a tiled server URI + key).
    redis : str
        Redis address; if none answers there (and it is on loopback) a ``redis-server`` is
        started with its data in ``state_dir/redis`` and stopped with the service.
    redis_prefix : str, optional
        Key prefix of this station's queue in Redis (default ``qs_<config name>``).
    zmq_control, zmq_info : str
        0MQ addresses of the manager's control (requests) and info (console) sockets.
    state_dir : path, optional
        Where the manager keeps ``existing_plans_and_devices.yaml`` (and a started Redis its
        data); default ``insitu-queue/<config name>``.
    startup_dir : path, optional
        Default: the repository's ``profiles/profile_insitu/startup``.
    open_environment : bool
        Open the RE environment (build the beamline) once the manager answers.
    admin_methods : bool
        Keep ``script_upload``, ``permissions_set`` and ``environment_destroy`` available on the
        control socket (refused by default: :mod:`insitu.services.queue_manager`).
    """
    from insitu.beamline.config import load_config
    from insitu.beamline.private_dir import make_private_dir

    # The control socket runs code in the worker (script_upload) and moves the stage.
    secured = bool(os.environ.get(ZMQ_SERVER_KEY_ENV))
    how = (
        f"set {ZMQ_SERVER_KEY_ENV} (from qserver-zmq-keys) in the environment, "
        "and give clients the public key"
    )
    for address, what in ((zmq_control, "--zmq-control"), (zmq_info, "--zmq-info")):
        require_loopback(address, what, secured=secured, how=how)
    station = load_config(config)
    address = RedisAddress.parse(redis)
    startup = Path(startup_dir) if startup_dir is not None else default_startup_dir()
    if not (startup / "user_group_permissions.yaml").is_file():
        raise ValueError(
            f"startup directory {str(startup)!r} has no user_group_permissions.yaml: give the "
            "profile's startup directory with --startup-dir"
        )
    state = Path(state_dir) if state_dir is not None else Path("insitu-queue") / station.name
    state = state.resolve()
    make_private_dir(state)
    prefix = redis_prefix or _default_prefix(station.name)

    stop_requested = False

    def request_stop(signum, frame):
        nonlocal stop_requested
        stop_requested = True

    environment = dict(os.environ)
    if config is not None:
        environment["INSITU_CONFIG"] = str(Path(config).resolve())
    else:
        environment.pop("INSITU_CONFIG", None)
    if admin_methods:
        environment[ADMIN_METHODS_ENV] = "1"
    else:
        environment.pop(ADMIN_METHODS_ENV, None)
    manager = redis_server = None
    previous = {s: signal.signal(s, request_stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        if not address.answers():
            redis_server = start_redis(address, state / "redis")
        command = manager_command(
            startup_dir=startup.resolve(),
            state_dir=state,
            redis=address,
            redis_prefix=prefix,
            zmq_control=zmq_control,
            zmq_info=zmq_info,
        )
        # Its own process group: a Ctrl-C in the terminal reaches only this process, which
        # then stops the manager in order.
        manager = subprocess.Popen(command, env=environment, start_new_session=True)
        _wait_for_manager(manager, zmq_control)
        print(
            f"insitu serve queue: station {station.name!r} at {zmq_control} (info {zmq_info}), "
            f"queue in {address} prefix {prefix!r}"
            + (" (Redis started here)" if redis_server else "")
            + f"; manager pid {manager.pid}",
            flush=True,
        )
        if open_environment and not stop_requested:
            _open_environment(zmq_control)
            print("insitu serve queue: environment open", flush=True)
        while not stop_requested and manager.poll() is None:
            time.sleep(0.2)
        if manager.poll() is None:
            _stop_manager(manager, zmq_control)
        return 0 if stop_requested else (manager.returncode or 1)
    finally:
        if manager is not None and manager.poll() is None:
            manager.kill()
            manager.wait(10)
        if redis_server is not None:
            redis_server.terminate()  # a clean shutdown: the append-only file is complete
            redis_server.wait(30)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _cmd_serve_queue(args) -> int:
    try:
        return _serve_from_args(args)
    except RuntimeError as error:  # a service that would not start: say why, no traceback
        print(f"insitu serve queue: {error}", file=sys.stderr)
        return 1


def _serve_from_args(args) -> int:
    return serve_queue(
        config=args.config,
        redis=args.redis,
        redis_prefix=args.redis_prefix,
        zmq_control=args.zmq_control,
        zmq_info=args.zmq_info,
        state_dir=args.state_dir,
        startup_dir=args.startup_dir,
        open_environment=args.open,
        admin_methods=args.admin_methods,
    )


def add_serve_parser(services: argparse._SubParsersAction) -> None:
    """Register ``insitu serve queue``."""
    parser = services.add_parser(
        "queue",
        help="start the plan queue: Redis (if none) and a bluesky-queueserver RE Manager",
        description=(
            "Start Redis on loopback if none answers at --redis, then the RE Manager with the "
            "insitu profile as its startup directory. Stop with Ctrl-C (or SIGTERM)."
        ),
    )
    # SUPPRESS: `insitu --config X serve queue` keeps X when --config is not repeated here.
    parser.add_argument(
        "--config",
        default=argparse.SUPPRESS,
        help="the station's beamline YAML (default: the simulated beamline)",
    )
    parser.add_argument(
        "--redis",
        default=os.environ.get("INSITU_REDIS", DEFAULT_REDIS),
        help=f"Redis address (default $INSITU_REDIS or {DEFAULT_REDIS})",
    )
    parser.add_argument(
        "--redis-prefix",
        default=None,
        help="key prefix of this station's queue in Redis (default qs_<config name>)",
    )
    parser.add_argument(
        "--zmq-control",
        default=DEFAULT_ZMQ_CONTROL,
        help=f"0MQ control address (default {DEFAULT_ZMQ_CONTROL})",
    )
    parser.add_argument(
        "--zmq-info",
        default=DEFAULT_ZMQ_INFO,
        help=f"0MQ info/console address (default {DEFAULT_ZMQ_INFO})",
    )
    parser.add_argument(
        "--state-dir",
        default=None,
        help="where the manager keeps its plan list (default insitu-queue/<config name>)",
    )
    parser.add_argument(
        "--startup-dir",
        default=None,
        help="the profile's startup directory (default profiles/profile_insitu/startup)",
    )
    parser.add_argument(
        "--open",
        action="store_true",
        help="open the RE environment (build the beamline) once the manager answers",
    )
    parser.add_argument(
        "--admin-methods",
        action="store_true",
        help="allow script_upload, permissions_set and environment_destroy on the control "
        "socket (refused by default: arbitrary code in the worker, a worker killed mid-plan)",
    )
    parser.set_defaults(func=_cmd_serve_queue)
