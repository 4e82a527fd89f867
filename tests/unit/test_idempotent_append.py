"""A table append whose response is lost lands once: never twice, never not at all."""

from __future__ import annotations

import httpx
import pyarrow
import pytest

from insitu.compat.bluesky_tiled_plugins import IdempotentRunWriter, TableAppendError


class LossyTable:
    """A tiled table client whose server may process an append and then lose the response."""

    uri = "http://tiled/table/run-1/primary/internal"

    def __init__(self) -> None:
        self.rows: list[int] = []
        self.lose_response = 0  # appends processed whose response is lost
        self.refuse = 0  # appends that fail before reaching the server
        self.status: int | None = None  # an HTTP error status for the next append

    def append_partition(self, partition: int, table: pyarrow.Table) -> None:
        assert partition == 0
        if self.status is not None:
            request = httpx.Request("PATCH", self.uri)
            response = httpx.Response(self.status, request=request)
            self.status = None
            raise httpx.HTTPStatusError("refused", request=request, response=response)
        if self.refuse:
            self.refuse -= 1
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
        self.rows.extend(table["seq_num"].to_pylist())
        if self.lose_response:
            self.lose_response -= 1
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.")

    def read_partition(self, partition: int, columns: list[str]) -> list[int]:
        return list(self.rows)


def _rows(first: int, count: int) -> pyarrow.Table:
    seq = list(range(first, first + count))
    return pyarrow.table({"seq_num": seq, "x": [float(s) for s in seq]})


def _writer() -> IdempotentRunWriter:
    return IdempotentRunWriter(client=None)


def test_an_append_the_server_processed_before_losing_the_response_is_not_repeated():
    table, writer = LossyTable(), _writer()
    writer._append_with_retry(table, _rows(1, 7), "primary")
    table.lose_response = 1
    writer._append_with_retry(table, _rows(8, 2), "primary")
    writer._append_with_retry(table, _rows(10, 3), "primary")
    assert table.rows == list(range(1, 13))


def test_an_append_that_never_reached_the_server_is_made_again():
    table, writer = LossyTable(), _writer()
    writer._append_with_retry(table, _rows(1, 4), "primary")
    table.refuse = 2
    writer._append_with_retry(table, _rows(5, 2), "primary")
    assert table.rows == list(range(1, 7))


def test_a_retry_whose_response_is_lost_too_is_not_repeated():
    table, writer = LossyTable(), _writer()
    table.refuse, table.lose_response = 1, 1
    writer._append_with_retry(table, _rows(1, 3), "primary")
    assert table.rows == [1, 2, 3]


def test_a_table_holding_other_rows_than_expected_is_an_error():
    table, writer = LossyTable(), _writer()
    writer._append_with_retry(table, _rows(1, 3), "primary")
    table.rows.append(99)  # someone else wrote into the run's table
    table.refuse = 1
    with pytest.raises(TableAppendError, match=r"'primary'.* 4 rows.* 3 before .* 2 nor 5"):
        writer._append_with_retry(table, _rows(4, 2), "primary")


@pytest.mark.parametrize("status", [400, 403, 422])
def test_a_refused_append_is_raised_not_retried(status):
    table, writer = LossyTable(), _writer()
    table.status = status
    with pytest.raises(httpx.HTTPStatusError):
        writer._append_with_retry(table, _rows(1, 3), "primary")
    assert table.rows == []


def test_a_server_error_append_is_checked_and_made_again():
    table, writer = LossyTable(), _writer()
    table.status = 503
    writer._append_with_retry(table, _rows(1, 3), "primary")
    assert table.rows == [1, 2, 3]
