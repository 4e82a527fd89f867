"""The API key options of every command: from the environment or an owner-only file, never argv.

A key on a command line is readable by every local user (``/proc/PID/cmdline``, ``ps``) and
lands in shell history and service journals. Every ``insitu`` command that talks to a catalog
server takes its key from ``$TILED_API_KEY`` or from ``--api-key-file FILE`` (a file only its
owner may read); ``--api-key KEY`` is refused with the way to do it instead.
"""

from __future__ import annotations

import argparse
import os
import stat
from pathlib import Path

__all__ = ["API_KEY_ENV", "add_api_key_options", "api_key_from_args", "read_secret_file"]

#: The environment variable every insitu command (and tiled's own client) reads the key from.
API_KEY_ENV = "TILED_API_KEY"


class _RefuseSecretOnCommandLine(argparse.Action):
    def __call__(self, parser, namespace, values, option_string=None):
        # The value is never echoed: the message must not become a second copy of the secret.
        parser.error(
            f"{option_string} would put the key on the command line, where `ps` and the shell "
            f"history show it to other users: set {API_KEY_ENV} in the environment or give "
            "--api-key-file FILE (a file readable by its owner only, mode 0600)"
        )


def add_api_key_options(parser: argparse.ArgumentParser, *, what: str) -> None:
    """Add ``--api-key-file`` (and a ``--api-key`` that refuses) to ``parser``.

    Parameters
    ----------
    what : str
        Whose key it is, for the help text (e.g. "the catalog server").
    """
    parser.add_argument(
        "--api-key-file",
        default=None,
        metavar="FILE",
        help=f"file holding the API key of {what}, readable by its owner only "
        f"(default: ${API_KEY_ENV})",
    )
    parser.add_argument(
        "--api-key", nargs="?", action=_RefuseSecretOnCommandLine, help=argparse.SUPPRESS
    )


def read_secret_file(path: str | os.PathLike) -> str:
    """The secret in ``path`` (surrounding whitespace stripped).

    Raises
    ------
    ValueError
        If the file is readable or writable by anyone but its owner, or empty.
    OSError
        If it cannot be read.
    """
    path = Path(path).expanduser()
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise ValueError(
            f"API key file {path} has mode {mode:04o}: others may read it; allowed is owner "
            f"only (chmod 600 {path})"
        )
    secret = path.read_text().strip()
    if not secret:
        raise ValueError(f"API key file {path} is empty")
    return secret


def api_key_from_args(args: argparse.Namespace) -> str | None:
    """The key of ``--api-key-file`` if given, else ``$TILED_API_KEY``, else None."""
    path = getattr(args, "api_key_file", None)
    if path:
        return read_secret_file(path)
    return os.environ.get(API_KEY_ENV) or None
