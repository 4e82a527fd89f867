"""Serve a line-oriented emulator on a pseudo-terminal or on loopback TCP, from one thread.

An emulator supplies ``respond(line) -> reply or None``; these servers do the byte plumbing,
so the driver on the other end sees a serial port (``/dev/pts/N``) or a serial-to-TCP adapter.
Both can play a pulled cable: ``set_disconnected(True)`` makes a pty silent (input dropped, no
replies) and makes the TCP server drop its client and close any new connection at once.
"""

from __future__ import annotations

import os
import select
import socket
import threading
import tty
from collections.abc import Callable

__all__ = ["LineResponder", "PtyLineServer", "TcpLineServer"]

LineResponder = Callable[[bytes], bytes | None]

_SELECT_PERIOD = 0.05  # wall seconds: how quickly the thread notices close() and faults
_MAX_PENDING = 4096  # bytes kept while waiting for a terminator (a flood without CR is dropped)


class _LineSplitter:
    """Accumulate bytes and hand out complete lines (terminator removed)."""

    def __init__(self, terminator: bytes) -> None:
        self._terminator = terminator
        self._pending = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        self._pending.extend(data)
        lines = []
        while (index := self._pending.find(self._terminator)) >= 0:
            lines.append(bytes(self._pending[:index]))
            del self._pending[: index + len(self._terminator)]
        if len(self._pending) > _MAX_PENDING:
            del self._pending[:-_MAX_PENDING]
        return lines

    def clear(self) -> None:
        self._pending.clear()


class _LineServer:
    def __init__(self, respond: LineResponder, *, name: str, terminator: bytes = b"\r") -> None:
        self._respond = respond
        self._name = name
        self._lines = _LineSplitter(terminator)
        self._stop = threading.Event()
        self._disconnected = threading.Event()
        self._thread: threading.Thread | None = None

    def set_disconnected(self, disconnected: bool) -> None:
        """Play (True) or end (False) a pulled cable."""
        if disconnected:
            self._disconnected.set()
        else:
            self._disconnected.clear()

    def _replies(self, data: bytes) -> bytes:
        out = bytearray()
        for line in self._lines.feed(data):
            reply = self._respond(line)
            if reply:
                out.extend(reply)
        return bytes(out)

    def _start_thread(self, target: Callable[[], None]) -> None:
        self._thread = threading.Thread(target=target, name=self._name, daemon=True)
        self._thread.start()

    def _join(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()


class PtyLineServer(_LineServer):
    """Serve on a new pseudo-terminal; ``start()`` returns the path a driver opens."""

    def __init__(self, respond: LineResponder, *, terminator: bytes = b"\r") -> None:
        super().__init__(respond, name="pty-line-server", terminator=terminator)
        self._master: int | None = None
        self._slave: int | None = None

    def start(self) -> str:
        """Create the pty and start serving.

        Returns
        -------
        str
            The slave path, e.g. ``/dev/pts/5`` (VISA: ``ASRL/dev/pts/5::INSTR``).
        """
        if self._thread is not None:
            raise RuntimeError("this pty server is already started")
        self._master, self._slave = os.openpty()
        # Raw mode: no echo, no CR/LF translation, bytes >= 0x80 untouched. The slave stays
        # open here so the master never sees EIO while the driver reopens the port.
        tty.setraw(self._slave)
        path = os.ttyname(self._slave)
        self._start_thread(self._serve)
        return path

    def close(self) -> None:
        """Stop the thread and close both ends of the pty."""
        self._join()
        for fd in (self._master, self._slave):
            if fd is not None:
                os.close(fd)
        self._master = self._slave = None

    def _serve(self) -> None:
        master = self._master
        assert master is not None
        while not self._stop.is_set():
            readable, _, _ = select.select([master], [], [], _SELECT_PERIOD)
            if not readable:
                continue
            try:
                data = os.read(master, 4096)
            except OSError:  # EIO: no slave open at this instant; the port is being reopened
                self._stop.wait(_SELECT_PERIOD)
                continue
            if self._disconnected.is_set():
                self._lines.clear()
                continue
            reply = self._replies(data)
            if reply:
                os.write(master, reply)


class TcpLineServer(_LineServer):
    """Serve one client at a time on 127.0.0.1, like a serial-to-TCP adapter.

    A new connection replaces the current one (a driver that reconnects after a failure must
    not be locked out by its own stale connection).
    """

    def __init__(self, respond: LineResponder, *, terminator: bytes = b"\r") -> None:
        super().__init__(respond, name="tcp-line-server", terminator=terminator)
        self._listener: socket.socket | None = None
        self._client: socket.socket | None = None

    def start(self, port: int = 0) -> int:
        """Listen on 127.0.0.1:``port`` (0 picks a free port) and start serving.

        Returns
        -------
        int
            The port (VISA: ``TCPIP::127.0.0.1::<port>::SOCKET``).
        """
        if self._thread is not None:
            raise RuntimeError("this TCP server is already started")
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind(("127.0.0.1", port))
            listener.listen(4)
        except OSError:
            listener.close()
            raise
        self._listener = listener
        self._start_thread(self._serve)
        return listener.getsockname()[1]

    def close(self) -> None:
        """Stop the thread and close the client and the listening socket."""
        self._join()
        self._drop_client()
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def _drop_client(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        self._lines.clear()

    def _serve(self) -> None:
        listener = self._listener
        assert listener is not None
        while not self._stop.is_set():
            if self._disconnected.is_set() and self._client is not None:
                self._drop_client()
            sockets = [listener] if self._client is None else [listener, self._client]
            readable, _, _ = select.select(sockets, [], [], _SELECT_PERIOD)
            if listener in readable:
                connection, _ = listener.accept()
                if self._disconnected.is_set():
                    connection.close()
                else:
                    self._drop_client()
                    self._client = connection
                continue
            if self._client is not None and self._client in readable:
                self._serve_client(self._client)

    def _serve_client(self, client: socket.socket) -> None:
        try:
            data = client.recv(4096)
        except OSError:
            data = b""
        if not data:  # the driver closed its end
            self._drop_client()
            return
        if self._disconnected.is_set():
            return
        reply = self._replies(data)
        if reply:
            try:
                client.sendall(reply)
            except OSError:
                self._drop_client()
