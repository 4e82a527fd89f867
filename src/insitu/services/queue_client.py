"""``insitu queue ...``: add plans to a station's queue and see its state, without ``qserver``.

A thin layer over bluesky-queueserver-api's ``REManagerAPI`` (0MQ) with the errors a person
can act on: a plan the manager does not know (and the ones it does), arguments that are not
JSON, a manager that does not answer. Exit codes: 0 done, 1 the manager refused or does not
answer, 2 bad input.

    insitu queue add heat_ramp --json '{"stage": "stage", "detectors": ["raman"],
                                        "start": 30, "stop": 300, "rate": 10, "every_C": 10}'
    insitu queue start
    insitu queue status
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from insitu.services.queue_server import DEFAULT_ZMQ_CONTROL, environment_ready, manager_api

__all__ = [
    "ManagerNotAnsweringError",
    "add_plan",
    "add_queue_parsers",
    "connect",
    "describe_plan",
    "parse_plan_arguments",
]


class ManagerNotAnsweringError(RuntimeError):
    """No RE Manager answers at the control address."""


def default_zmq_control() -> str:
    """``$QSERVER_ZMQ_CONTROL_ADDRESS`` (queueserver's own variable), else loopback:60615."""
    return os.environ.get("QSERVER_ZMQ_CONTROL_ADDRESS") or DEFAULT_ZMQ_CONTROL


@contextmanager
def connect(zmq_control: str | None = None, *, timeout: float = 5.0) -> Iterator[Any]:
    """An ``REManagerAPI`` on ``zmq_control``, checked to answer, closed on exit.

    Raises
    ------
    ManagerNotAnsweringError
        If no manager answers within ``timeout`` seconds.
    """
    address = zmq_control or default_zmq_control()
    with manager_api(address, timeout=timeout) as api:
        try:
            api.status()
        except api.RequestTimeoutError:
            raise ManagerNotAnsweringError(
                f"no RE Manager answers at {address} (start one with `insitu serve queue`, or "
                "give its address with --zmq-control)"
            ) from None
        yield api


def parse_plan_arguments(
    json_kwargs: str | None = None, json_args: str | None = None
) -> tuple[list, dict]:
    """Positional and keyword plan arguments from JSON text (a list and an object).

    Raises
    ------
    ValueError
        Naming the option and what is wrong with its text.
    """
    kwargs: Any = {}
    args: Any = []
    if json_kwargs:
        try:
            kwargs = json.loads(json_kwargs)
        except json.JSONDecodeError as error:
            raise ValueError(f"--json {json_kwargs!r} is not valid JSON: {error}") from None
        if not isinstance(kwargs, dict):
            raise ValueError(
                f'--json must be a JSON object of keyword arguments ({{"name": value}}), '
                f"got {type(kwargs).__name__}: {json_kwargs!r}"
            )
    if json_args:
        try:
            args = json.loads(json_args)
        except json.JSONDecodeError as error:
            raise ValueError(f"--args {json_args!r} is not valid JSON: {error}") from None
        if not isinstance(args, list):
            raise ValueError(
                f"--args must be a JSON array of positional arguments, got "
                f"{type(args).__name__}: {json_args!r}"
            )
    return args, kwargs


def describe_plan(description: dict) -> str:
    """A plan's call signature from the manager's description: ``name(a, *, b=1)``."""
    parts, keyword_only = [], False
    for parameter in description.get("parameters", []):
        kind = parameter.get("kind", {}).get("name", "")
        text = parameter["name"]
        if kind == "VAR_POSITIONAL":
            text, keyword_only = f"*{text}", True
        elif kind == "VAR_KEYWORD":
            text = f"**{text}"
        elif kind == "KEYWORD_ONLY" and not keyword_only:
            parts.append("*")
            keyword_only = True
        if "default" in parameter:
            text += f"={parameter['default']}"
        parts.append(text)
    return f"{description['name']}({', '.join(parts)})"


def add_plan(
    api, plan: str, args: Sequence = (), kwargs: dict | None = None, *, front: bool = False
) -> dict:
    """Add ``plan(*args, **kwargs)`` to the queue (devices and plans given by name).

    Raises
    ------
    ValueError
        If the manager does not know ``plan`` (the message lists the plans it knows), or
        rejects the arguments (its validation message).
    """
    from bluesky_queueserver_api import BPlan

    allowed = api.plans_allowed()["plans_allowed"]
    if not allowed:
        raise ValueError(
            "the RE Manager knows no plans yet: open its environment once "
            "(`insitu queue open`), which lists the startup profile's plans"
        )
    if plan not in allowed:
        raise ValueError(f"unknown plan {plan!r}: the queue takes {', '.join(sorted(allowed))}")
    try:
        response = api.item_add(
            BPlan(plan, *args, **(kwargs or {})), pos="front" if front else None
        )
    except api.RequestFailedError as error:
        raise ValueError(f"{plan}: {error.response.get('msg', error)}") from None
    return response["item"]


def _summary(item: dict) -> str:
    arguments = [json.dumps(a) for a in item.get("args", [])]
    arguments += [f"{k}={json.dumps(v)}" for k, v in item.get("kwargs", {}).items()]
    text = f"{item['name']}({', '.join(arguments)})"
    return text if len(text) <= 100 else text[:97] + "..."


# ---- commands ------------------------------------------------------------------------------


def _cmd_add(api, args) -> int:
    arguments, kwargs = parse_plan_arguments(args.json, args.args)
    item = add_plan(api, args.plan, arguments, kwargs, front=args.front)
    size = api.status()["items_in_queue"]
    print(f"added {_summary(item)} as item {item['item_uid']}; {size} item(s) in the queue")
    return 0


def _cmd_status(api, args) -> int:
    status = api.status(reload=True)
    queue = api.queue_get()
    print(
        f"manager: {status['manager_state']}; environment: "
        f"{status['worker_environment_state']}; queue: {status['items_in_queue']} item(s), "
        f"history: {status['items_in_history']} item(s)"
    )
    running = queue.get("running_item") or {}
    if running:
        print(f"running: {_summary(running)}")
    for position, item in enumerate(queue["items"]):
        print(f"{position:3d}  {_summary(item)}")
    return 0


def _cmd_history(api, args) -> int:
    items = api.history_get()["items"][-args.last :]
    if not items:
        print("the history is empty")
    for item in items:
        result = item.get("result", {})
        stopped = result.get("time_stop")
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stopped)) if stopped else "?"
        print(
            f"{when}  {result.get('exit_status', '?'):9}  {len(result.get('run_uids', []))} "
            f"run(s)  {_summary(item)}"
        )
        if result.get("msg"):
            print(f"    {result['msg'].strip().splitlines()[-1]}")
    return 0


def _cmd_plans(api, args) -> int:
    allowed = api.plans_allowed()["plans_allowed"]
    if not allowed:
        print("no plans yet: open the environment once (`insitu queue open`)")
    for name in sorted(allowed):
        print(describe_plan(allowed[name]))
    return 0


def _request(action: str, *, wait_for=None):
    def command(api, args) -> int:
        try:
            getattr(api, action)()
        except api.RequestFailedError as error:
            print(f"insitu queue {args.action}: {error}", file=sys.stderr)
            return 1
        if wait_for is not None and args.wait:
            api.wait_for_condition(wait_for, timeout=args.timeout)
        print(f"insitu queue {args.action}: done")
        return 0

    return command


def _environment_closed(status) -> bool:
    return not status["worker_environment_exists"] and status["manager_state"] == "idle"


def _idle(status) -> bool:
    return status["manager_state"] == "idle"


def _run(command):
    def run(args) -> int:
        try:
            if args.action == "add":  # bad JSON is reported with or without a manager
                parse_plan_arguments(args.json, args.args)
            with connect(args.zmq_control) as api:
                return command(api, args)
        except ManagerNotAnsweringError as error:
            print(f"insitu queue {args.action}: {error}", file=sys.stderr)
            return 1
        except ValueError as error:
            print(f"insitu queue {args.action}: {error}", file=sys.stderr)
            return 2

    return run


def add_queue_parsers(actions: argparse._SubParsersAction) -> None:
    """Register ``insitu queue add/status/start/stop/history/plans/open/close/resume``."""

    def action(name: str, help: str, command, *, wait=None):
        parser = actions.add_parser(name, help=help, description=help)
        parser.add_argument(
            "--zmq-control",
            default=None,
            help=f"the RE Manager's 0MQ control address (default $QSERVER_ZMQ_CONTROL_ADDRESS "
            f"or {DEFAULT_ZMQ_CONTROL})",
        )
        if wait is not None:
            parser.add_argument("--wait", action="store_true", help=wait)
            parser.add_argument(
                "--timeout", type=float, default=600.0, help="seconds to --wait (default 600)"
            )
        parser.set_defaults(func=_run(command))
        return parser

    add = action(
        "add",
        "add a plan to the queue: devices and plans by name, values as JSON",
        _cmd_add,
    )
    add.add_argument("plan", help="plan name (see `insitu queue plans`)")
    add.add_argument(
        "--json",
        default=None,
        metavar="OBJECT",
        help='keyword arguments as a JSON object, e.g. \'{"stage": "stage", "stop": 300}\'',
    )
    add.add_argument(
        "--args",
        default=None,
        metavar="ARRAY",
        help="positional arguments as a JSON array, e.g. '[\"stage\", 30]'",
    )
    add.add_argument("--front", action="store_true", help="put it first instead of last")

    action("status", "the manager's state, the running item and the queue", _cmd_status)
    history = action("history", "finished items: exit status, runs, errors", _cmd_history)
    history.add_argument("--last", type=int, default=20, help="show the last N (default 20)")
    action("plans", "the plans the queue takes, with their parameters", _cmd_plans)
    action(
        "start",
        "start running the queue",
        _request("queue_start", wait_for=_idle),
        wait="wait until the queue is done (the manager is idle)",
    )
    action("stop", "stop the queue once the running item is done", _request("queue_stop"))
    action(
        "open",
        "open the RE environment (the worker builds the beamline from the profile)",
        _request("environment_open", wait_for=environment_ready),
        wait="wait until the environment is open",
    )
    action(
        "close",
        "close the RE environment (the worker closes the beamline)",
        _request("environment_close", wait_for=_environment_closed),
        wait="wait until the environment is closed",
    )
    action(
        "resume",
        "resume a paused plan (e.g. after a sample change by a person)",
        _request("re_resume"),
    )
