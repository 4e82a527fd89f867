"""RunEngine metadata that survives restarts (``scan_id``, sample, proposal) in one JSON file."""

from __future__ import annotations

import copy
import json
import os
import tempfile
import threading
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

from insitu.beamline.private_dir import make_private_dir

__all__ = ["PersistentMetadata"]


class PersistentMetadata(MutableMapping):
    """A dict for ``RE.md`` that writes itself to ``directory/metadata.json`` on every change.

    bluesky ships ``PersistentDict`` for this, but on zict 3 two instances on the same directory
    (a beamline closed and loaded again in one session, or two processes) corrupt each other
    when the first one's finalizer runs; an atomically replaced JSON file has no such state.
    Values must be JSON-serializable, as run metadata is.
    """

    def __init__(self, directory: str | os.PathLike):
        self._path = Path(directory) / "metadata.json"
        make_private_dir(self._path.parent)  # 0700 if created here: scan ids, samples, pids
        self._lock = threading.Lock()
        self._data: dict[str, Any] = {}
        if self._path.exists():
            try:
                self._data = json.loads(self._path.read_text())
            except json.JSONDecodeError as error:
                raise ValueError(
                    f"RunEngine metadata file {str(self._path)!r} is corrupt ({error}); "
                    "move it away to start with fresh metadata"
                ) from None

    @property
    def path(self) -> Path:
        """The JSON file holding the metadata."""
        return self._path

    def _save(self) -> None:
        text = json.dumps(self._data, indent=1, sort_keys=True)
        handle, temporary = tempfile.mkstemp(dir=self._path.parent, prefix=".metadata-")
        with os.fdopen(handle, "w") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, self._path)

    def __setitem__(self, key: str, value: Any) -> None:
        json.dumps(value)  # refuse what cannot be stored before changing anything
        with self._lock:
            self._data[key] = value
            self._save()

    def __delitem__(self, key: str) -> None:
        with self._lock:
            del self._data[key]
            self._save()

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(dict(self._data))

    def __len__(self) -> int:
        return len(self._data)

    def __deepcopy__(self, memo: dict) -> dict[str, Any]:
        # The RunEngine deep-copies RE.md into each start document: give it the plain values.
        return copy.deepcopy(self._data, memo)

    def __repr__(self) -> str:
        return f"PersistentMetadata({str(self._path)!r}, {self._data!r})"
