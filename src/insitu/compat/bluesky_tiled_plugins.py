"""bluesky-tiled-plugins: TiledWriter's private per-run writers, as it has no flush or per-run hook.

``TiledWriter`` batches events by count only and has no public flush; the beamline's
:class:`~insitu.beamline.durable_writer.DurableTiledWriter` writes each run writer's event cache
on a time bound. :class:`~insitu.services.derived_writer.DerivedStreamsWriter` adds streams to
runs another writer created, with its own per-run writer. Both need TiledWriter's private
per-run machinery, reached only through this module:

* ``TiledWriter._factory`` (the ``RunRouter`` factory it builds in ``__init__``), its settings
  ``_batch_size``, ``_max_array_size``, ``_validate``, ``_normalizer``, and the private
  ``_RunWriter`` and ``_ConditionalBackup`` classes: :class:`PerRunTiledWriter`,
  :func:`run_writer_options`, :func:`run_callback`, :data:`RunWriter`;
* ``_RunWriter._internal_data_cache`` (events batched per stream name), ``_write_internal_data``
  and ``_desc_nodes`` (stream containers by stream name and descriptor uid):
  :func:`write_cached_events`, :func:`stream_nodes`;
* ``_RunWriter._internal_tables`` and ``_internal_arrays`` (the nodes it opened):
  :func:`stream_tree_nodes`;
* ``_RunWriter._append_with_retry(df_client, table, desc_name)``, which
  ``_write_internal_data`` calls for every batch of table rows: :class:`IdempotentRunWriter`
  replaces it (the library's forces a retry that can append the same rows twice);
* ``_RunWriter._write_internal_data(data_cache, desc_node)``, which creates a stream's table
  with ``desc_node.create_appendable_table``: :class:`IdempotentRunWriter` hands it a node whose
  tables are created ordered by ``seq_num`` (:class:`_SeqNumOrderedNode`).
"""

from __future__ import annotations

import logging
from typing import Any

import httpx
from bluesky_tiled_plugins import TiledWriter
from bluesky_tiled_plugins.writing import tiled_writer as _library
from bluesky_tiled_plugins.writing.tiled_writer import JSONLinesWriter
from tiled.client.utils import retry_context
from tiled.structures.core import StructureFamily
from tiled.structures.data_source import DataSource
from tiled.structures.table import TableStructure

from insitu.compat import check_version

__all__ = [
    "DISTRIBUTION",
    "IdempotentRunWriter",
    "TableAppendError",
    "WRITTEN_FOR",
    "PerRunTiledWriter",
    "RunWriter",
    "run_callback",
    "run_writer_options",
    "stream_nodes",
    "stream_tree_nodes",
    "table_rows",
    "write_cached_events",
]

logger = logging.getLogger(__name__)

DISTRIBUTION = "bluesky-tiled-plugins"
WRITTEN_FOR = "2.0.12"
check_version(DISTRIBUTION, WRITTEN_FOR, module=__name__)

#: TiledWriter's writer of one run (``_RunWriter``: private in the library); subclass it to
#: change how a run is written.
RunWriter = _library._RunWriter
_ConditionalBackup = _library._ConditionalBackup


class TableAppendError(RuntimeError):
    """A table holds neither the rows before a lost append nor those plus the append."""


class IdempotentRunWriter(RunWriter):
    """TiledWriter's run writer whose table appends are written exactly once.

    When the response to an append is lost (the server went down while answering), the
    library retries the append blindly and warns that the rows may now be there twice: the
    run then reads back with more scalar rows than spectra, or not at all. Here the table's
    row count is read back (retrying while the server is away) and the rows are appended only
    if the lost attempt did not land. A table that holds some other number of rows raises
    :class:`TableAppendError` (the caller then keeps the run elsewhere, e.g. the spool).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._table_rows: dict[str, int] = {}  # rows known to be in each table, by its uri

    def _write_internal_data(self, data_cache: list[dict[str, Any]], desc_node: Any) -> None:
        super()._write_internal_data(data_cache, desc_node=_SeqNumOrderedNode(desc_node))

    def _append_with_retry(self, df_client: Any, table: Any, desc_name: str) -> None:
        before = self._table_rows.get(df_client.uri, 0)
        try:
            df_client.append_partition(0, table)
        except (httpx.TransportError, httpx.HTTPStatusError) as error:
            status = getattr(getattr(error, "response", None), "status_code", 500)
            if status < 500 and status != 429:
                raise  # the request was refused: appending it again would not help
            logger.warning(
                "appending %d rows to stream %r failed (%r): reading the table back to append "
                "them only if they did not land",
                table.num_rows,
                desc_name,
                error,
            )
            for attempt in retry_context():
                with attempt:
                    rows = table_rows(df_client, table.column_names[0])
                    if rows == before:
                        df_client.append_partition(0, table)
                    elif rows != before + table.num_rows:
                        raise TableAppendError(
                            f"stream {desc_name!r}: the table holds {rows} rows, neither the "
                            f"{before} before an append of {table.num_rows} nor "
                            f"{before + table.num_rows} after it"
                        ) from error
        self._table_rows[df_client.uri] = before + table.num_rows


#: How a stream's table is read back: tiled's SQL table adapter adds ``ORDER BY`` only for a
#: table created with ``order_by_args`` (tiled 0.2.20 has it, PR #1402), which TiledWriter does not
#: ask for; on PostgreSQL a run's rows then came back in the database's physical order (seq 4,
#: 1, 2, 3, ..., 22, 39, 23) for any reader, not only insitu's (which sorts, read_stream).
SEQ_NUM_ORDER = ({"column": "seq_num", "direction": "asc"},)


class _SeqNumOrderedNode:
    """A stream's tiled node whose appendable tables are created ordered by ``seq_num``.

    Everything else goes to the node itself. A table without a ``seq_num`` column (the library
    split a very wide one) is created as the library would.
    """

    def __init__(self, node: Any) -> None:
        self._node = node

    def __getattr__(self, name: str) -> Any:
        return getattr(self._node, name)

    def create_appendable_table(self, schema: Any, *, key=None, metadata=None, access_tags=None):
        if "seq_num" not in schema.names:
            return self._node.create_appendable_table(
                schema=schema, key=key, metadata=metadata, access_tags=access_tags
            )
        # tiled's own create_appendable_table, with the order: it has no argument for it.
        return self._node.new(
            StructureFamily.table,
            [
                DataSource(
                    structure=TableStructure.from_schema(schema, 1),
                    structure_family=StructureFamily.table,
                    mimetype="application/x-tiled-sql-table",
                    parameters={"order_by_args": [dict(order) for order in SEQ_NUM_ORDER]},
                )
            ],
            key=key,
            metadata=metadata or {},
            specs=[],
            access_tags=access_tags,
        )


def table_rows(df_client: Any, column: str) -> int:
    """How many rows a tiled table holds (read as one column: its structure has no count)."""
    return len(df_client.read_partition(0, columns=[column]))


def run_writer_options(writer: TiledWriter) -> dict[str, Any]:
    """The keyword arguments TiledWriter gives every per-run writer it makes."""
    return {
        "batch_size": writer._batch_size,
        "max_array_size": writer._max_array_size,
        "validate": writer._validate,
        "ignore_errors": writer.ignore_errors,
    }


def run_callback(writer: TiledWriter, run_writer: Any) -> Any:
    """What ``writer`` routes one run's documents to, as TiledWriter's own ``_factory`` builds it.

    ``run_writer`` behind the writer's normalizer (unless it has none) and, with a
    ``backup_directory``, behind a JSON-lines backup used when writing fails.
    """
    callback = run_writer
    if writer._normalizer:
        callback = writer._normalizer(
            patches=writer.patches, spec_to_mimetype=writer.spec_to_mimetype
        )
        callback.subscribe(run_writer)
    if writer.backup_directory:
        callback = _ConditionalBackup(callback, [JSONLinesWriter(writer.backup_directory)])
    return callback


class PerRunTiledWriter(TiledWriter):
    """A TiledWriter whose per-run writer comes from :meth:`make_run_writer` (override it).

    TiledWriter's ``RunRouter`` calls its private ``_factory`` for each run's start document;
    here that factory makes the run writer with :meth:`make_run_writer` and wraps it with
    :func:`run_callback` (normalizer and backup, as the library does), then with
    :meth:`wrap_run`.
    """

    def make_run_writer(self, start_doc: dict) -> Any:
        """A new writer for the run that ``start_doc`` starts (an :class:`IdempotentRunWriter`)."""
        return IdempotentRunWriter(self.client, **run_writer_options(self))

    def wrap_run(self, callback: Any, start_doc: dict) -> Any:
        """What the run's documents go to, around ``callback`` (default: ``callback`` itself)."""
        return callback

    def _factory(self, name, doc):
        return [self.wrap_run(run_callback(self, self.make_run_writer(doc)), doc)], []


def write_cached_events(run_writer: Any) -> int:
    """Write the events ``run_writer`` holds in its batch cache, as its own ``stop`` does.

    Returns
    -------
    int
        How many events were written (the cache is then empty).
    """
    written = 0
    for stream, cache in run_writer._internal_data_cache.items():
        if cache:
            run_writer._write_internal_data(cache, desc_node=run_writer._desc_nodes[stream])
            written += len(cache)
            cache.clear()
    return written


def stream_nodes(run_writer: Any) -> dict[str, Any]:
    """The run writer's stream containers, keyed by stream name and by descriptor uid (live)."""
    return run_writer._desc_nodes


def stream_tree_nodes(run_writer: Any) -> list[Any]:
    """The nodes the run writer opened: internal tables, internal arrays, stream containers.

    In that order, with repeats (a stream's container is listed under its name and under each
    descriptor uid): close each ``uri`` once.
    """
    return [
        *run_writer._internal_tables.values(),
        *run_writer._internal_arrays.values(),
        *run_writer._desc_nodes.values(),
    ]
