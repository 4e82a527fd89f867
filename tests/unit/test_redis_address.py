"""The queue's Redis address: the forms a person types, and clear refusals."""

from __future__ import annotations

import pytest

from insitu.services.redis_server import RedisAddress, start_redis


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("redis://127.0.0.1:6390/2", ("127.0.0.1", 6390, 2)),
        ("localhost:7000", ("localhost", 7000, 0)),
        ("db.example", ("db.example", 6379, 0)),
        (" redis://h:1/ ", ("h", 1, 0)),
    ],
)
def test_an_address_parses_in_every_form_and_reads_back(text, expected):
    address = RedisAddress.parse(text)
    assert (address.host, address.port, address.db) == expected
    assert RedisAddress.parse(str(address)) == address
    assert address.for_manager == f"{expected[0]}:{expected[1]}/{expected[2]}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("redis://", "is not valid: use redis://HOST:PORT"),
        ("h:port", "is not valid"),
        ("h:70000", "port 70000 is not in 1..65535"),
        ("h:0", "port 0 is not in 1..65535"),
    ],
)
def test_a_bad_address_is_refused_naming_it(text, message):
    with pytest.raises(ValueError, match=message):
        RedisAddress.parse(text)


def test_a_redis_is_only_ever_started_on_loopback(tmp_path):
    with pytest.raises(ValueError, match="only started here on loopback"):
        start_redis(RedisAddress.parse("redis://10.0.0.5:6379"), tmp_path)
    assert not any(tmp_path.iterdir())
