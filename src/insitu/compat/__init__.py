"""Every access to a private name of a third-party library, one module per library.

Outside this package insitu never names a private attribute, class or method of a library: it
calls the small functions here, whose names say what they reach. Each module checks at import
that the installed library has the major.minor version it was written for (a patch release is
accepted) and raises ImportError otherwise; ``tests/unit/test_compat.py`` checks that every
internal touched here still exists in the installed libraries. To upgrade a library: bump its
pin in pyproject.toml and ``WRITTEN_FOR`` in its module here, and run that test.

* :mod:`insitu.compat.bluesky_tiled_plugins`: ``TiledWriter``'s per-run writer and its cache.
* :mod:`insitu.compat.thales_remote`: ``ThalesRemoteConnection``'s port, socket and receiver.
* :mod:`insitu.compat.queueserver_api`: ``REManagerAPI``'s 0MQ request client and monitors.
* :mod:`insitu.compat.bluesky_queueserver`: the 0MQ context and sockets of queueserver's
  client and receivers (reached through ``REManagerAPI``).
* :mod:`insitu.compat.bluesky_run_engine`: the RunEngine's command registry and awaited
  statuses (held time), and ``bluesky.utils.Plan``'s never-iterated check made lighter.
* :mod:`insitu.compat.tiled_clients`: a structure-client registry that ``.v2`` (databroker's
  ``Broker``) copies for real instead of switching every run of the process to the v2 layout.
"""

from __future__ import annotations

import importlib.metadata
import re

__all__ = ["check_version", "major_minor"]


def major_minor(version: str) -> tuple[int, int]:
    """``(major, minor)`` of a version string such as ``"2.0.12"`` or ``"1.2.8.post1"``.

    Raises
    ------
    ValueError
        If ``version`` does not start with ``<major>.<minor>``.
    """
    match = re.match(r"\s*v?(\d+)\.(\d+)", version)
    if match is None:
        raise ValueError(f"version {version!r} does not start with <major>.<minor>")
    return int(match.group(1)), int(match.group(2))


def check_version(
    distribution: str, written_for: str, *, module: str, installed: str | None = None
) -> str:
    """Raise ImportError unless ``distribution`` is installed at the major.minor of ``written_for``.

    Parameters
    ----------
    distribution : str
        The library's distribution name (as pinned in pyproject.toml).
    written_for : str
        The version whose internals ``module`` was written against (its pin).
    module : str
        The compat module that touches the internals, for the message.
    installed : str, optional
        The installed version; looked up with :func:`importlib.metadata.version` when not given.

    Returns
    -------
    str
        The installed version.
    """
    if installed is None:
        installed = importlib.metadata.version(distribution)
    try:
        same = major_minor(installed) == major_minor(written_for)
    except ValueError:
        same = False
    if not same:
        supported = ".".join(str(part) for part in major_minor(written_for))
        raise ImportError(
            f"{module} uses private internals of {distribution} and supports "
            f"{distribution} {supported}.x (written for {written_for}), but {distribution} "
            f"{installed} is installed: install {distribution}=={written_for} (the pin in "
            f"pyproject.toml), or port {module} to {installed} and run tests/unit/test_compat.py"
        )
    return installed
