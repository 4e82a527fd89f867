"""A transport that replays a fixed script of (sent, reply) byte exchanges, for protocol tests.

The idea is pymeasure's ``expected_protocol``: the test lists the exact bytes a driver must send
and the exact bytes the instrument answers; any unexpected write, and any exchange or reply byte
left over when the script is checked, fails with an AssertionError that shows the difference.
It lives in :mod:`insitu.testing` (not in tests/) because tests never import from tests/.
"""

from __future__ import annotations

from collections.abc import Iterable
from types import TracebackType

from insitu.devices.transport import TransportConnectionError, TransportTimeout

__all__ = ["ScriptedTransport"]


class ScriptedTransport:
    """Replay ``exchanges`` in order; fail loudly on anything else.

    Parameters
    ----------
    exchanges : iterable of (bytes, bytes or None)
        Each pair is (the exact bytes the driver must write, *including* the write termination;
        the bytes the instrument sends back, including the read termination, or None for no
        reply). A reply without a read termination models a truncated line: reading it times
        out, as it would on a wire.
    read_termination, write_termination : bytes, optional
        Line terminators; a carriage return by default.
    address : str, optional
        Shown in error messages.

    Examples
    --------
    >>> with ScriptedTransport([(b"T\\r", b"\\x01\\x80\\x80\\x80\\x80\\x8000FA\\r")]) as wire:
    ...     wire.write(b"T")
    ...     wire.read_line()
    b'\\x01\\x80\\x80\\x80\\x80\\x8000FA'
    """

    def __init__(
        self,
        exchanges: Iterable[tuple[bytes, bytes | None]],
        *,
        read_termination: bytes = b"\r",
        write_termination: bytes = b"\r",
        address: str = "scripted",
    ) -> None:
        self.address = address
        self.timeout = 0.0
        self._script = [
            (bytes(sent), None if reply is None else bytes(reply)) for sent, reply in exchanges
        ]
        self._next = 0
        self._pending_reply = bytearray()
        self._read_termination = read_termination
        self._write_termination = write_termination
        self._closed = False
        self.written: list[bytes] = []

    def __enter__(self) -> ScriptedTransport:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        # Do not hide the test's own failure behind a leftover-exchange complaint.
        if exc_type is None:
            self.check()

    @property
    def remaining(self) -> int:
        """How many scripted exchanges have not been written yet."""
        return len(self._script) - self._next

    def write(self, data: bytes | str) -> None:
        """Check ``data`` + write termination against the next scripted exchange."""
        if self._closed:
            raise TransportConnectionError(f"{self.address}: the transport is closed")
        payload = data.encode("latin-1") if isinstance(data, str) else bytes(data)
        sent = payload + self._write_termination
        self.written.append(sent)
        if self._next >= len(self._script):
            raise AssertionError(
                f"ScriptedTransport: unexpected write {sent!r} after all "
                f"{len(self._script)} scripted exchanges were used"
            )
        expected, reply = self._script[self._next]
        if sent != expected:
            raise AssertionError(
                f"ScriptedTransport: exchange {self._next + 1} of {len(self._script)}: "
                f"expected write {expected!r}, got {sent!r}"
            )
        self._next += 1
        if reply is not None:
            self._pending_reply.extend(reply)

    def read_line(self) -> bytes:
        """Return the next scripted reply line; raise TransportTimeout if there is none."""
        if self._closed:
            raise TransportConnectionError(f"{self.address}: the transport is closed")
        index = self._pending_reply.find(self._read_termination)
        if index < 0:
            raise TransportTimeout(f"{self.address}: no complete reply (scripted)")
        line = bytes(self._pending_reply[:index])
        del self._pending_reply[: index + len(self._read_termination)]
        return line

    def discard_input(self) -> None:
        """Drop unread reply bytes, as a real input flush would."""
        self._pending_reply.clear()

    def check(self) -> None:
        """Fail if scripted exchanges were never written or reply bytes were never read."""
        problems = []
        if self._next < len(self._script):
            left = [sent for sent, _ in self._script[self._next :]]
            problems.append(
                f"{len(left)} scripted exchange(s) never written, next expected {left[0]!r} "
                f"(all left: {left!r})"
            )
        if self._pending_reply:
            problems.append(f"reply bytes never read: {bytes(self._pending_reply)!r}")
        if problems:
            raise AssertionError("ScriptedTransport: " + "; ".join(problems))

    def close(self) -> None:
        """Close, then check that the whole script was used."""
        if self._closed:
            return
        self._closed = True
        self.check()
