"""The thin layer over ``thales_remote``: both Term channels, commands, and errors made clear.

A :class:`ThalesSession` holds the "ScriptRemote" command channel (``ThalesRemoteConnection`` +
``ThalesRemoteScriptWrapper``) and the "FileExchange" channel (``ThalesFileInterface``) to one
Term. The library is used unmodified; three things it lacks are done here, each with public calls
where the library offers them:

* Port: the library connects to a private port attribute of ``ThalesRemoteConnection`` (260,
  set in its constructor, no parameter). It is set (through :mod:`insitu.compat.thales_remote`,
  like every private name of the library used here) on our own connection instances before they
  connect; for the file channel, whose constructor builds and connects its connection in one
  go, through a property on the public ``remoteConnection`` attribute
  (:class:`_FileInterfaceOnPort`).
* Closing: ``disconnectFromTerm`` shuts the socket's receiving side and joins its receiver
  thread, which on Linux only ends if Term resets the connection (``recv`` returns ``b""`` after
  a shutdown and the library's ``readall`` loops on it); on a dead link it raises before closing
  anything. :func:`hang_up` sends the same goodbye with a timeout and then closes the socket itself
  (:func:`sever`), which ends the receiver thread and wakes every waiter with
  ``TermConnectionError``.
* Liveness: a reply that never comes blocks the library forever, and after Term closes the
  connection its receiver thread reads ``b""`` in a loop without noticing. While a sweep runs a
  watchdog sends Term heartbeats; when a send fails or Term stays silent too long the session is
  severed, so the waiting ``measureEIS`` raises instead of hanging. The heartbeat is sent
  without the library's send timeout: ``sendTelegram(timeout=...)`` makes the shared socket
  non-blocking for a moment, which can kill the receiver thread (EAGAIN) on a fast link.
"""

from __future__ import annotations

import queue
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from thales_remote.connection import ThalesRemoteConnection
from thales_remote.error import TermConnectionError, ThalesRemoteError
from thales_remote.file_interface import ThalesFileInterface
from thales_remote.script_wrapper import ThalesRemoteScriptWrapper

from insitu.compat.thales_remote import (
    close_socket,
    receiver_thread,
    set_term_port,
    thales_socket,
)
from insitu.devices.zahner._errors import (
    ZahnerCommandError,
    ZahnerConnectionError,
    ZahnerError,
)

__all__ = ["ThalesSession", "hang_up", "sever"]

SCRIPT_REMOTE = "ScriptRemote"
FILE_EXCHANGE = "FileExchange"
_GOODBYE_TIMEOUT_S = 2.0
#: Wall seconds a Remote2 command may take before the link counts as lost (Term answers a
#: setting in well under a second; the sweep itself is waited for by ``measure_eis``).
COMMAND_TIMEOUT_S = 15.0
_LINK_ERRORS = (TermConnectionError, OSError, queue.Empty, EOFError)

T = TypeVar("T")


def _connection_on_port(port: int) -> ThalesRemoteConnection:
    connection = ThalesRemoteConnection()
    set_term_port(connection, port)
    return connection


class _FileInterfaceOnPort(ThalesFileInterface):
    """``ThalesFileInterface`` whose connection goes to ``port`` instead of the fixed 260.

    The base constructor assigns ``self.remoteConnection = ThalesRemoteConnection()`` and then
    connects it; this property sets the port on the connection as it is assigned.
    """

    def __init__(self, address: str, port: int, connection_name: str = FILE_EXCHANGE) -> None:
        self._port_for_connection = port
        try:
            super().__init__(address, connection_name)
        except BaseException:
            sever(self.__dict__.get("_connection_on_port"))
            raise

    @property
    def remoteConnection(self) -> ThalesRemoteConnection:  # noqa: N802 (the library's name)
        return self.__dict__["_connection_on_port"]

    @remoteConnection.setter
    def remoteConnection(self, connection: ThalesRemoteConnection) -> None:  # noqa: N802
        set_term_port(connection, self._port_for_connection)
        self.__dict__["_connection_on_port"] = connection


#: Wall seconds between checks, while a command waits, that Term's connection is still there.
_RECEIVER_CHECK_S = 0.1

_SEVER_LOCK = threading.Lock()  # stop() and the sweep thread may cut the same connection


def _peer_closed(connection: ThalesRemoteConnection | None) -> bool:
    """True if Term closed the connection and nothing is left to read on it."""
    sock = thales_socket(connection) if connection is not None else None
    if sock is None:
        return False
    try:
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except (BlockingIOError, InterruptedError):
        return False  # open, nothing to read yet
    except OSError:
        return True  # reset or already closed


def sever(connection: ThalesRemoteConnection | None) -> None:
    """Close a library connection at once, without a goodbye; every waiter on it then raises."""
    if connection is None:
        return
    with _SEVER_LOCK:
        if not connection.isConnectedToTerm():
            return
        try:
            # wakes the receiver thread blocked in recv()
            thales_socket(connection).shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # already reset by the peer: nothing left to shut down
        close_socket(connection)
    receiver = receiver_thread(connection)
    if receiver is not None and receiver is not threading.current_thread():
        receiver.join(timeout=_GOODBYE_TIMEOUT_S)


def hang_up(connection: ThalesRemoteConnection | None) -> None:
    """Say goodbye to Term as ``disconnectFromTerm`` does, then close the socket ourselves."""
    if connection is None or not connection.isConnectedToTerm():
        return
    name = connection.getConnectionName()
    try:
        connection.sendTelegram(f"3,{name},0,RS", 128)
        connection.waitForStringTelegram(128, timeout=_GOODBYE_TIMEOUT_S)
        connection.sendTelegram(bytearray([255, 255]), 4)
    except _LINK_ERRORS:
        pass  # the link is already gone: there is nobody to say goodbye to
    finally:
        sever(connection)


class ThalesSession:
    """Both channels to one Term, opened together; commands with errors translated.

    Parameters
    ----------
    host, port : str, int
        Where Term listens.
    owner : str
        Device name used in error messages.
    """

    def __init__(self, host: str, port: int, *, owner: str) -> None:
        self.host = host
        self.port = port
        self.owner = owner
        self.command_timeout_s = COMMAND_TIMEOUT_S
        self.thales_version = ""
        self._script: ThalesRemoteConnection | None = None
        self._wrapper: ThalesRemoteScriptWrapper | None = None
        self._files: _FileInterfaceOnPort | None = None
        self._broken = False

    @property
    def where(self) -> str:
        """``host:port`` of Term."""
        return f"{self.host}:{self.port}"

    @property
    def usable(self) -> bool:
        """True while both channels are open and nothing has failed on them."""
        return (
            not self._broken
            and self._script is not None
            and self._script.isConnectedToTerm()
            and self._files is not None
            and self._files.remoteConnection.isConnectedToTerm()
        )

    @property
    def wrapper(self) -> ThalesRemoteScriptWrapper:
        """The library's script wrapper (only valid while the session is open)."""
        if self._wrapper is None:
            raise ZahnerConnectionError(f"{self.owner}: not connected to Term at {self.where}")
        return self._wrapper

    # --- opening and closing -------------------------------------------------------------------
    def open(self) -> None:
        """Connect both channels (concurrently: the library spends 1.6 s in each connect).

        Raises
        ------
        ZahnerConnectionError
            If Term cannot be reached.
        ZahnerError
            If Thales is too old for this ``thales_remote`` or refuses remote control.
        """
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="zahner-files") as pool:
            files_future = pool.submit(_FileInterfaceOnPort, self.host, self.port)
            try:
                self._open_script_channel()
            except BaseException:
                if files_future.exception() is None:
                    self._files = files_future.result()
                self.close()
                raise
            try:
                self._files = files_future.result()
            except TermConnectionError as error:
                self.close()
                raise ZahnerConnectionError(
                    f"{self.owner}: cannot open the FileExchange channel to Term at "
                    f"{self.where}: {error}"
                ) from error

    def _open_script_channel(self) -> None:
        connection = _connection_on_port(self.port)
        try:
            connection.connectToTerm(self.host, SCRIPT_REMOTE)
        except TermConnectionError as error:
            sever(connection)
            raise ZahnerConnectionError(
                f"{self.owner}: cannot reach Term at {self.where}: {error}"
            ) from error
        self._script = connection
        try:
            self._wrapper = ThalesRemoteScriptWrapper(connection)
        except ThalesRemoteError as error:
            raise ZahnerError(f"{self.owner}: Term at {self.where}: {error}") from error
        self.thales_version = self.command("version query", self._wrapper.getThalesVersion)
        self.command("force remote script", self._wrapper.forceThalesIntoRemoteScript)

    def sever(self) -> None:
        """Cut both channels at once (no goodbye): whatever waits on them raises."""
        self._broken = True
        sever(self._script)
        if self._files is not None:
            sever(self._files.remoteConnection)

    def close(self) -> None:
        """Say goodbye on both channels and close them; safe to call more than once.

        A session that already failed is only cut: there is nobody left to say goodbye to.
        """
        end = hang_up if not self._broken else sever
        self._broken = True
        end(self._script)
        if self._files is not None:
            end(self._files.remoteConnection)

    # --- commands ------------------------------------------------------------------------------
    def command(self, command: str, action: Callable[[], T]) -> T:
        """Run one library call; Thales errors and a lost link become clear exceptions.

        Parameters
        ----------
        command : str
            The Remote2 command(s) the call sends, for messages (``"Fmax=1e+06"``).
        action : callable
            The library call.

        Raises
        ------
        ZahnerCommandError
            Thales answered ``ERROR;<code>;<n>``.
        ZahnerConnectionError
            The connection is closed or broke during the call.
        """
        if self._broken or self._script is None or not self._script.isConnectedToTerm():
            raise ZahnerConnectionError(
                f"{self.owner}: no connection to Term at {self.where} for {command}"
            )
        try:
            reply: Any = self._within_timeout(command, action)
        except ZahnerConnectionError:
            raise  # already says what happened (no reply in time)
        except ThalesRemoteError as error:
            raise ZahnerCommandError(self.owner, command, str(error)) from error
        except _LINK_ERRORS as error:
            self._broken = True
            raise ZahnerConnectionError(
                f"{self.owner}: connection to Term at {self.where} lost during {command}: "
                f"{str(error) or type(error).__name__}"
            ) from error
        except AttributeError as error:
            if self._script.isConnectedToTerm():
                raise  # not a closed socket: a genuine bug, do not disguise it
            self._broken = True
            raise ZahnerConnectionError(
                f"{self.owner}: connection to Term at {self.where} closed during {command}"
            ) from error
        if isinstance(reply, str) and "ERROR" in reply:
            # Some wrapper methods (setPotentiostatMode, enablePotentiostat) return error
            # replies instead of raising.
            raise ZahnerCommandError(self.owner, command, reply)
        return reply

    def _within_timeout(self, command: str, action: Callable[[], T]) -> T:
        """Run ``action`` on a helper thread and give up after :data:`COMMAND_TIMEOUT_S`.

        thales_remote waits for a reply without a timeout; if Term's connection dies while a
        command is in flight (its receiver thread gone, nothing left to wake the wait), the
        call would block forever. Here the session is severed and the caller gets a
        ``ZahnerConnectionError`` instead (the helper thread, stuck in the library, is left to
        the daemon).
        """
        outcome: dict[str, Any] = {}
        finished = threading.Event()

        def call() -> None:
            try:
                outcome["reply"] = action()
            except BaseException as error:  # re-raised on the caller's thread
                outcome["error"] = error
            finally:
                finished.set()

        threading.Thread(target=call, name=f"{self.owner}-command", daemon=True).start()
        deadline = time.monotonic() + self.command_timeout_s
        while not finished.wait(_RECEIVER_CHECK_S):
            # Term closed the connection: thales_remote's receiver then spins on recv() == b""
            # and nothing will ever answer (seen: a command sent just as Term went away waited
            # out the whole timeout). Look at the socket ourselves.
            gone = _peer_closed(self._script)
            if gone or time.monotonic() > deadline:
                self.sever()
                raise ZahnerConnectionError(
                    f"{self.owner}: Term at {self.where} "
                    + (
                        f"closed the connection during {command}"
                        if gone
                        else f"did not answer {command} within {self.command_timeout_s:g} s"
                    )
                )
        if "error" in outcome:
            raise outcome["error"]
        return outcome["reply"]

    def measure_eis(
        self, *, heartbeat_period: float, heartbeat_timeout: float, abort: threading.Event
    ) -> None:
        """Run the EIS sweep set up before, watching Term's heartbeat meanwhile.

        Parameters
        ----------
        heartbeat_period, heartbeat_timeout : float
            Wall seconds between heartbeats, and how long Term may stay silent.
        abort : threading.Event
            When set, the session is severed, which ends the wait for the sweep.
        """
        done = threading.Event()
        silence: list[str] = []

        def watch() -> None:
            try:
                self._watch_heartbeat(done, abort, heartbeat_period, heartbeat_timeout)
            except _LINK_ERRORS as error:
                if not done.is_set():
                    silence.append(f"heartbeat failed: {str(error) or type(error).__name__}")
                    self.sever()

        watchdog = threading.Thread(target=watch, name=f"{self.owner}-heartbeat", daemon=True)
        watchdog.start()
        try:
            self.command("EIS", self.wrapper.measureEIS)
        except ZahnerConnectionError as error:
            if silence:
                raise ZahnerConnectionError(f"{error} ({silence[0]})") from error
            raise
        finally:
            done.set()
            watchdog.join()

    def _watch_heartbeat(
        self, done: threading.Event, abort: threading.Event, period: float, timeout: float
    ) -> None:
        """Send a heartbeat every ``period``; raise when Term is silent for ``timeout``.

        Heartbeats keep going while a reply is late: on a link the peer has closed, the second
        send fails at once (the library's receiver cannot tell: it reads b"" forever).
        """
        connection = self._script
        if connection is None:
            return
        name = connection.getConnectionName()
        last_reply = time.monotonic()
        while not done.wait(period):
            if abort.is_set():
                self.sever()
                return
            try:
                connection.sendTelegram(f"1,{name}", 128)
            except AttributeError:
                if connection.isConnectedToTerm():
                    raise  # not a closed socket: a genuine bug
                raise TermConnectionError("connection closed") from None
            try:
                connection.waitForStringTelegram(128, timeout=period)
                last_reply = time.monotonic()
            except queue.Empty:
                if time.monotonic() - last_reply > timeout:
                    raise TermConnectionError(f"Term silent for more than {timeout} s") from None

    def fetch_file(self, path: str) -> bytes:
        """Bring the file at ``path`` on the Thales PC over the FileExchange channel.

        Raises
        ------
        ZahnerError
            If Term delivers nothing for ``path``.
        ZahnerConnectionError
            If the channel is closed or breaks.
        """
        if self._files is None:
            raise ZahnerConnectionError(f"{self.owner}: no FileExchange channel to {self.where}")
        files = self._files
        received = self.command(f"acquire file {path}", lambda: files.acquireFile(path))
        if received is None or len(received.binaryData) == 0:
            raise ZahnerError(f"{self.owner}: Term at {self.where} delivered no data for {path}")
        return bytes(received.binaryData)
