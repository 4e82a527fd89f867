"""Services listen on loopback unless secured: a control socket or document proxy bound beyond
this machine without keys is refused before anything starts."""

from __future__ import annotations

import pytest

from insitu.services.loopback import host_of, is_loopback, require_loopback
from insitu.services.queue_server import ZMQ_SERVER_KEY_ENV, serve_queue
from insitu.services.streaming import start_proxy


@pytest.mark.parametrize(
    ("address", "host", "loopback"),
    [
        ("tcp://127.0.0.1:60615", "127.0.0.1", True),
        ("tcp://localhost:60615", "localhost", True),
        ("[::1]:5577", "::1", True),
        ("127.8.0.3:5577", "127.8.0.3", True),
        ("tcp://0.0.0.0:60615", "0.0.0.0", False),
        ("tcp://*:60615", "*", False),
        ("10.0.0.5:5577", "10.0.0.5", False),
        ("station-a:5577", "station-a", False),
    ],
)
def test_which_addresses_stay_on_this_machine(address, host, loopback):
    assert host_of(address) == host
    assert is_loopback(host) is loopback


def test_the_queue_refuses_a_control_socket_beyond_loopback_without_keys(monkeypatch, tmp_path):
    monkeypatch.delenv(ZMQ_SERVER_KEY_ENV, raising=False)
    with pytest.raises(ValueError) as refused:
        serve_queue(zmq_control="tcp://0.0.0.0:60615", state_dir=tmp_path / "state")
    message = str(refused.value)
    assert "--zmq-control tcp://0.0.0.0:60615 would listen beyond this machine" in message
    assert ZMQ_SERVER_KEY_ENV in message and "ssh -L" in message
    assert not (tmp_path / "state").exists()  # refused before anything was started or made
    with pytest.raises(ValueError, match=r"--zmq-info tcp://10\.0\.0\.5:60625"):
        serve_queue(zmq_info="tcp://10.0.0.5:60625", state_dir=tmp_path / "state")


def test_with_a_server_key_the_queue_may_listen_on_the_network():
    require_loopback("tcp://0.0.0.0:60615", "--zmq-control", secured=True)


def test_the_document_proxy_binds_loopback_only():
    with pytest.raises(ValueError, match=r"start_proxy host 0\.0\.0\.0:5577 would listen beyond"):
        start_proxy(5577, 5578, host="0.0.0.0")
