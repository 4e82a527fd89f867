"""The transports under the Linkam driver: ScriptedTransport's checks and opening addresses."""

from __future__ import annotations

import socket

import pytest

from insitu.devices.transport import (
    TransportAddressError,
    TransportConnectionError,
    TransportTimeout,
    open_transport,
)
from insitu.testing.scripted_transport import ScriptedTransport


def test_scripted_transport_replays_exact_exchanges():
    with ScriptedTransport([(b"T\r", b"\x01\x80\x80\x80\x80\x80FF9C\r"), (b"S\r", b"\r")]) as wire:
        wire.write(b"T")
        assert wire.read_line() == b"\x01\x80\x80\x80\x80\x80FF9C"
        wire.write("S")
        assert wire.read_line() == b""


def test_scripted_transport_shows_an_unexpected_write():
    wire = ScriptedTransport([(b"L17500\r", b"\r")])
    with pytest.raises(
        AssertionError, match=r"exchange 1 of 1: expected write b'L17500\\r', got b'L1750\\r'"
    ):
        wire.write(b"L1750")


def test_scripted_transport_fails_on_a_write_after_the_script():
    wire = ScriptedTransport([])
    with pytest.raises(AssertionError, match=r"unexpected write b'T\\r' after all 0"):
        wire.write(b"T")


def test_scripted_transport_fails_on_leftover_exchanges_when_checked_or_closed():
    wire = ScriptedTransport([(b"T\r", b"x\r"), (b"S\r", b"\r")])
    wire.write(b"T")
    wire.read_line()
    with pytest.raises(
        AssertionError, match=r"1 scripted exchange\(s\) never written, next expected b'S\\r'"
    ):
        wire.check()
    with pytest.raises(AssertionError, match="never written"):
        wire.close()


def test_scripted_transport_fails_on_unread_reply_bytes():
    wire = ScriptedTransport([(b"S\r", b"\r")])
    wire.write(b"S")
    with pytest.raises(AssertionError, match=r"reply bytes never read: b'\\r'"):
        wire.check()


def test_scripted_transport_times_out_without_a_complete_line():
    wire = ScriptedTransport([(b"T\r", None), (b"T\r", b"\x01\x80")])
    wire.write(b"T")
    with pytest.raises(TransportTimeout):
        wire.read_line()
    wire.write(b"T")
    with pytest.raises(TransportTimeout):
        wire.read_line()
    wire.discard_input()
    wire.check()


@pytest.mark.parametrize(
    "address",
    ["not a resource", "ASRL/dev/no-such-port-here::INSTR", "GPIB0::99::INSTR?"],
)
def test_open_transport_names_a_bad_address(address):
    with pytest.raises(
        TransportAddressError, match="cannot open instrument address|not a VISA"
    ) as caught:
        open_transport(address, timeout=0.2)
    assert address in str(caught.value)


def test_open_transport_reports_a_refused_tcp_connection():
    with socket.socket() as probe:  # find a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    address = f"TCPIP::127.0.0.1::{port}::SOCKET"
    with pytest.raises(TransportAddressError, match="Connection refused") as caught:
        open_transport(address, timeout=0.5)
    assert address in str(caught.value)


def test_tcp_transport_reads_raw_bytes_and_tells_a_closed_peer_from_silence():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        transport = open_transport(f"TCPIP::127.0.0.1::{port}::SOCKET", timeout=0.2)
        try:
            peer, _ = server.accept()
            with peer:
                transport.write(b"T")
                assert peer.recv(16) == b"T\r"
                peer.sendall(b"\x10\x80\x9e\x80\x80\x80FF9C\r")
                assert transport.read_line() == b"\x10\x80\x9e\x80\x80\x80FF9C"
                with pytest.raises(TransportTimeout, match="no complete reply within 0.2 s"):
                    transport.read_line()
            with pytest.raises(TransportConnectionError, match="closed by the other end"):
                transport.read_line()
        finally:
            transport.close()
    with pytest.raises(TransportConnectionError, match="closed"):
        transport.write(b"T")
