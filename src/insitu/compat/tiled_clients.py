"""tiled + bluesky-tiled-plugins: a structure-client registry that ``.v2`` cannot switch for all.

bluesky-tiled-plugins' ``run.v2`` and ``catalog.v2`` (which databroker's v1 ``Broker`` and
``Header`` call) make "a copy" of the client's structure-client registry with ``copy.copy`` and
set ``BlueskyRun`` to the v2 class in it. tiled's registry (``OneShotCachedMap``) keeps its
entries in a slot that a shallow copy shares, so the "copy" is the registry itself: after one
``db[-1].table()`` every run read in the process, by any catalog client, comes back in the v2
layout (a stream's keys become ``data``/``timestamps``/``config`` instead of its columns) and
code reading columns fails far from the cause. The CI run of 2026-12-03 failed on it.

:func:`catalog_structure_clients` gives a catalog client a registry whose copies are real
copies, so ``.v2`` gets its v2 classes and everything else keeps the v3 layout. The only
library behaviour relied on is that ``.v2`` copies the registry with ``copy.copy`` and then
``set``s into the copy; ``tests/unit/test_compat.py`` checks that a run read after a
``Broker`` and a ``run.v2`` is still v3.
"""

from __future__ import annotations

from tiled.client.container import DEFAULT_STRUCTURE_CLIENT_DISPATCH, Container
from tiled.utils import OneShotCachedMap

from insitu.compat import check_version

__all__ = ["DISTRIBUTION", "WRITTEN_FOR", "catalog_structure_clients"]

DISTRIBUTION = "tiled"
WRITTEN_FOR = "0.2.20"
check_version(DISTRIBUTION, WRITTEN_FOR, module=__name__)


class _CopyableRegistry(OneShotCachedMap):
    """A structure-client registry whose ``copy.copy`` shares nothing with it."""

    __slots__ = ()

    def __copy__(self) -> _CopyableRegistry:
        # Entries resolve lazily from this registry (the library defers heavy imports);
        # ``set`` on the copy replaces the entry in the copy only.
        return _CopyableRegistry({key: _resolver(self, key) for key in self})


def _resolver(registry, key):
    return lambda: registry[key]


def catalog_structure_clients() -> OneShotCachedMap:
    """A fresh numpy structure-client registry (with the bluesky clients) for one catalog client.

    Pass it as ``structure_clients`` to ``tiled.client.from_context``. Runs read through the
    client are v3 ``BlueskyRun``s whatever ``.v2`` accessor anyone calls.
    """
    Container.discover_clients_from_entrypoints()  # idempotent; registers BlueskyRun & co.
    from bluesky_tiled_plugins.clients.bluesky_run import BlueskyRun

    shared = DEFAULT_STRUCTURE_CLIENT_DISPATCH["numpy"]
    registry = _CopyableRegistry({key: _resolver(shared, key) for key in shared})
    # Pinned: the shared registry itself may already have been switched to v2 by a client
    # opened outside insitu.
    registry.set("BlueskyRun", lambda: BlueskyRun)
    return registry
