"""Zahner "Term" emulator: the TCP server the unmodified ``thales_remote`` library talks to.

Term listens on TCP port 260 and relays each named connection: "ScriptRemote" carries Remote
Script commands to Thales (:mod:`insitu.sim.thales_script`), any other name (the library's default
is "FileExchange") moves result files. Framing is in :mod:`insitu.sim.thales_wire`. Control
telegrams (type 128, ``"<kind>,<connection name>[,...]"``) are answered by Term itself, also while
Thales is busy measuring:

==========================  =====================================================================
request                     reply
==========================  =====================================================================
``1,<name>``                heartbeat: ``1,<name>,<ms since the workstation last communicated>``
``2,<name>``                start Remote Script: ``2,<name>,OK``
``3,<name>,0,OFF``          stop what Thales is doing (a running sweep is aborted), then echo
``3,<name>,0,RS``           the client says goodbye: echo
``3,<name>,7``              Thales version: ``3,<name>,<version>``
``3,<name>,6``              workstation serial number: ``3,<name>,<serial>``
``3,<name>,4,ON,<exts>``    automatic file exchange on (reply on type 132: echo)
``3,<name>,4,OFF``          automatic file exchange off (reply on type 132: echo)
``3,<name>,1,<path>``       send one file: types 130 (path), 129 (length), 131 (data chunks);
                            a missing file is sent with length 0
anything else               echo
==========================  =====================================================================

Control replies leave 20 ms after the request, as over a network (``_control`` says why a
zero-latency reply would break the library). After the goodbye telegram (type 4) Term waits
0.4 s and then resets the connection. The library shuts down its receiving side and joins its
receiver thread after 0.2 s; on Linux only a reset (not a plain close) ends that thread, so this
is what lets ``disconnectFromTerm`` return.
"""

from __future__ import annotations

import errno
import queue
import socket
import struct
import threading
from collections.abc import Callable

from insitu import clock
from insitu.sim.film_impedance import FilmImpedance
from insitu.sim.thales_faults import FAULT_KINDS, FaultSwitch
from insitu.sim.thales_script import ImpedanceModel, ThalesInstrument
from insitu.sim.thales_wire import (
    MessageType,
    PeerClosedError,
    encode_telegram,
    read_registration,
    read_telegram,
)

__all__ = ["FAULT_KINDS", "TERM_PORT", "TermEmulator", "serve_standalone"]

TERM_PORT = 260
SCRIPT_CONNECTION = "ScriptRemote"
_FILE_CHUNK = 32 * 1024
_GOODBYE_RESET_DELAY_S = 0.4
_CONTROL_REPLY_LATENCY_S = 0.02


class _Client:
    """One accepted connection: its socket, a send lock, and (ScriptRemote) a command queue."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.name = ""
        self.send_lock = threading.Lock()
        self.commands: queue.Queue[bytes | None] = queue.Queue()
        self.file_extensions: tuple[str, ...] | None = None  # automatic exchange when set

    def send(self, *telegrams: tuple[int, bytes | str]) -> None:
        data = b"".join(encode_telegram(kind, payload) for kind, payload in telegrams)
        with self.send_lock:
            try:
                self.sock.sendall(data)
            except OSError:
                pass  # the client is gone; its reader thread ends the connection

    def sever(self) -> None:
        """Close our side at once (FIN): wakes the reader thread."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def reset_on_close(self) -> None:
        """Make the coming ``close()`` send a TCP reset instead of a FIN."""
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass


class TermEmulator:
    """Term and Thales with a potentiostat and a cell, on loopback TCP.

    Parameters
    ----------
    impedance_model : callable(frequency_Hz) -> complex, optional
        The cell's impedance "now" (noise included), called once per measured point. Defaults to
        :class:`~insitu.sim.film_impedance.FilmImpedance` (the 750 C film at 25 C).
    seed : int, optional
        Noise seed of the default model.
    thales_version : str
        Version Term reports (``thales_remote`` 1.2 requires at least 5.9.3).
    serial_number : str
        Digits reported as the workstation's serial number.

    Notes
    -----
    Records for tests: :attr:`received_commands`, :attr:`registrations`,
    :attr:`potentiostat_on`, :attr:`potentiostat_log`, :attr:`files`; :meth:`clear_record`.
    """

    def __init__(
        self,
        impedance_model: ImpedanceModel | None = None,
        *,
        seed: int | None = None,
        thales_version: str = "6.1.0",
        serial_number: str = "10001",
    ) -> None:
        self.thales_version = thales_version
        self.serial_number = serial_number
        self.impedance_model = (
            FilmImpedance(seed=seed) if impedance_model is None else impedance_model
        )
        self._faults = FaultSwitch()
        self.instrument = ThalesInstrument(
            self.impedance_model,
            self._faults,
            on_drop=self._drop_all,
            on_file=self._push_file,
            serial_number=serial_number,
        )
        self._lock = threading.Lock()
        self._clients: set[_Client] = set()
        self._threads: list[threading.Thread] = []
        self._registrations: list[str] = []
        self._listener: socket.socket | None = None
        self._listener_host = "127.0.0.1"
        self._accept_thread: threading.Thread | None = None
        self._stop_accepting = threading.Event()
        self._closing = threading.Event()
        self.port: int | None = None

    def __enter__(self) -> TermEmulator:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- serving -------------------------------------------------------------------------------
    def serve_tcp(self, port: int | None = None, *, host: str = "127.0.0.1") -> int:
        """Listen on ``host`` and return the port.

        Parameters
        ----------
        port : int, optional
            None: Term's port 260 if it may be bound (root, and free), else any free port.
            0: any free port. Otherwise exactly that port.
        host : str
            Interface to listen on (loopback by default).
        """
        if self._listener is not None:
            raise RuntimeError(f"TermEmulator already serves on port {self.port}")
        if port is None:
            try:
                return self._listen(host, TERM_PORT)
            except OSError as error:
                if error.errno not in (errno.EACCES, errno.EPERM, errno.EADDRINUSE):
                    raise
                return self._listen(host, 0)
        return self._listen(host, port)

    def _listen(self, host: str, port: int) -> int:
        listener = socket.create_server((host, port))
        listener.settimeout(0.2)  # accept() wakes up to notice close()
        self._listener = listener
        self._listener_host = host
        self.port = listener.getsockname()[1]
        self._stop_accepting = threading.Event()
        self._accept_thread = threading.Thread(
            target=self._accept_loop,
            args=(listener, self._stop_accepting),
            name="term-accept",
            daemon=True,
        )
        self._accept_thread.start()
        return self.port

    def _stop_listening(self) -> None:
        """Close the port (connections are refused) and end the accept thread."""
        self._stop_accepting.set()
        if self._accept_thread is not None:
            self._accept_thread.join()
        if self._listener is not None:
            self._listener.close()

    def close(self) -> None:
        """Stop serving: abort a running sweep, close every connection, join every thread."""
        self._closing.set()
        self._stop_listening()  # no new connection after this
        with self._lock:
            clients = list(self._clients)
        for client in clients:
            client.sever()
        self.instrument.abort_measurement()
        for thread in list(self._threads):
            thread.join()

    # --- faults and records --------------------------------------------------------------------
    def inject_fault(
        self, kind: str, *, command: str | None = None, code: int | None = None
    ) -> None:
        """Arm a fault: ``"drop_connection_mid_sweep"``, ``"error_reply"``, ``"overload"`` or
        ``"unreachable"``.

        ``command`` (a command name such as ``"EIS"`` or ``"Fmax"``) and ``code`` apply to
        ``"error_reply"`` only. See
        :class:`~insitu.sim.thales_faults.FaultSwitch` for what each fault does.
        """
        was_unreachable = self._faults.unreachable
        self._faults.arm(kind, command=command, code=code)
        if kind == "unreachable" and not was_unreachable:
            self._stop_listening()
            self._drop_all()
            self.instrument.abort_measurement()

    def clear_fault(self) -> None:
        """Disarm every fault (an unreachable Term listens again on the same port)."""
        was_unreachable = self._faults.unreachable
        self._faults.clear()
        if was_unreachable and self.port is not None and not self._closing.is_set():
            self._listen(self._listener_host, self.port)

    @property
    def received_commands(self) -> list[str]:
        """Every Remote Script command received, in order."""
        return self.instrument.received_commands

    @property
    def registrations(self) -> list[str]:
        """Names of every connection registered so far, in order."""
        with self._lock:
            return list(self._registrations)

    @property
    def potentiostat_on(self) -> bool:
        """Whether the emulated potentiostat is switched on."""
        return self.instrument.potentiostat_on

    @property
    def potentiostat_log(self) -> list[tuple[float, bool]]:
        """Every potentiostat switching as ``(experiment time, on)``."""
        return self.instrument.potentiostat_log

    @property
    def files(self) -> dict[str, bytes]:
        """Result files written by the emulated Thales, by lower-case full path."""
        return self.instrument.files

    def clear_record(self) -> None:
        """Forget received commands, registrations and the potentiostat log."""
        self.instrument.clear_record()
        with self._lock:
            self._registrations.clear()

    # --- connections ---------------------------------------------------------------------------
    def _start(self, target: Callable[..., None], name: str, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, name=f"term-{name}", daemon=True)
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
        thread.start()

    def _accept_loop(self, listener: socket.socket, stop: threading.Event) -> None:
        while not (self._closing.is_set() or stop.is_set()):
            try:
                sock, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client = _Client(sock)
            with self._lock:
                self._clients.add(client)
            self._start(self._serve_client, "client", client)

    def _serve_client(self, client: _Client) -> None:
        executor: threading.Thread | None = None
        try:
            client.name = read_registration(client.sock)
            with self._lock:
                self._registrations.append(client.name)
            if client.name == SCRIPT_CONNECTION:
                executor = threading.Thread(
                    target=self._execute_commands, args=(client,), name="term-script", daemon=True
                )
                executor.start()
            while not self._closing.is_set():
                message_type, payload = read_telegram(client.sock)
                if message_type == MessageType.SCRIPT and executor is not None:
                    client.commands.put(payload)
                elif message_type == MessageType.CONTROL:
                    self._control(client, payload.decode("ascii", errors="replace"))
                elif message_type == MessageType.GOODBYE:
                    self._closing.wait(_GOODBYE_RESET_DELAY_S)
                    client.reset_on_close()
                    return
        except (PeerClosedError, ValueError, UnicodeDecodeError):
            pass  # the client went away or spoke no Term: end this connection
        finally:
            if executor is not None:
                self.instrument.abort_measurement()
                client.commands.put(None)
                executor.join()
            with self._lock:
                self._clients.discard(client)
            client.sock.close()

    def _execute_commands(self, client: _Client) -> None:
        while (telegram := client.commands.get()) is not None:
            reply = self.instrument.execute(telegram.decode("ascii", errors="replace"))
            if reply is not None:
                client.send((MessageType.SCRIPT, reply))

    def _control(self, client: _Client, text: str) -> None:
        parts = text.split(",")
        kind, name = parts[0], parts[1] if len(parts) > 1 else client.name
        action = parts[2] if len(parts) > 2 else ""
        reply = text
        if kind == "1":
            reply = f"1,{name},{self.instrument.milliseconds_since_activity():.0f}"
        elif kind == "2":
            reply = f"2,{name},OK"
        elif kind == "3" and action == "0" and parts[3:4] == ["OFF"]:
            self.instrument.abort_measurement()
        elif kind == "3" and action == "7":
            reply = f"3,{name},{self.thales_version}"
        elif kind == "3" and action == "6":
            reply = f"3,{name},{self.serial_number}"
        elif kind == "3" and action == "4":
            on = parts[3:4] == ["ON"]
            extensions = ",".join(parts[4:]) if on else ""
            client.file_extensions = (
                tuple(e for e in extensions.lower().split("*") if e) if on else None
            )
            client.send((MessageType.FILE_CONTROL_REPLY, text))
            return
        elif kind == "3" and action == "1":
            path = ",".join(parts[3:])
            self._send_file(client, path, self.instrument.file(path) or b"")
            return
        # A real Term answers over a network, never within microseconds. The latency matters:
        # thales_remote's sendTelegram(timeout=...) switches the shared socket to non-blocking
        # for the duration of its send, and a reply read completely inside that window makes
        # the library's receiver thread fail on EAGAIN (seen here with getThalesVersion(1)).
        self._closing.wait(_CONTROL_REPLY_LATENCY_S)
        client.send((MessageType.CONTROL, reply))

    def _send_file(self, client: _Client, path: str, data: bytes) -> None:
        telegrams: list[tuple[int, bytes | str]] = [
            (MessageType.FILE_PATH, path),
            (MessageType.FILE_LENGTH, str(len(data))),
        ]
        telegrams += [
            (MessageType.FILE_DATA, data[i : i + _FILE_CHUNK])
            for i in range(0, len(data), _FILE_CHUNK)
        ]
        client.send(*telegrams)

    def _push_file(self, path: str, data: bytes) -> None:
        with self._lock:
            receivers = [c for c in self._clients if c.file_extensions is not None]
        for client in receivers:
            if any(path.lower().endswith(ext) for ext in client.file_extensions or ()):
                self._send_file(client, path, data)

    def _drop_all(self) -> None:
        with self._lock:
            clients = list(self._clients)
        for client in clients:
            client.sever()


def serve_standalone(port: int | None = None, speedup: float = 1.0) -> None:
    """Serve a Term emulator until Ctrl-C (``insitu sim zahner``); prints the port.

    Parameters
    ----------
    port : int, optional
        TCP port; by default 260 if it may be bound, else any free port.
    speedup : float
        Experiment seconds per wall second for the emulated sweeps.
    """
    clock.set_speedup(speedup)
    emulator = TermEmulator()
    try:
        bound = emulator.serve_tcp(port)
        address = "127.0.0.1" if bound == TERM_PORT else f"127.0.0.1:{bound}"
        print(
            f"Zahner Term emulator (Thales {emulator.thales_version}) on 127.0.0.1:{bound}: "
            f"connect with ZahnerEIS({address!r}, name='eis')",
            flush=True,
        )
        print("Ctrl-C to stop", flush=True)
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        emulator.close()
