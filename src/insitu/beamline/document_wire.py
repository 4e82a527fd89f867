"""Bluesky documents on the 0MQ wire as msgpack: data, never code.

bluesky's 0MQ ``Publisher``/``RemoteDispatcher`` default to ``pickle``, and unpickling what
arrives on a socket runs whatever code the sender chose. These are the serializer and
deserializer the beamline's publisher and every consumer use instead: msgpack, with numpy
arrays as (dtype string, shape, raw bytes). Object arrays are refused both ways (they are pickles
in disguise: ``msgpack-numpy`` unpickles them, which is why it is not used here).
"""

from __future__ import annotations

from typing import Any

import msgpack
import numpy as np

__all__ = ["dumps", "loads"]

#: msgpack extension code of a numpy array.
_NDARRAY = 42


def _encode(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        if obj.dtype.hasobject:
            raise TypeError(f"numpy array of dtype {obj.dtype} cannot be sent: object arrays")
        array = np.ascontiguousarray(obj)
        payload = msgpack.packb([array.dtype.str, list(array.shape), array.tobytes()])
        return msgpack.ExtType(_NDARRAY, payload)
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, tuple | set | frozenset):
        return list(obj)
    raise TypeError(f"{type(obj).__name__} {obj!r} cannot be sent in a document")


def _decode(code: int, payload: bytes) -> Any:
    if code != _NDARRAY:
        return msgpack.ExtType(code, payload)
    dtype_str, shape, raw = msgpack.unpackb(payload)
    dtype = np.dtype(dtype_str)
    if dtype.hasobject:
        raise ValueError(f"refusing a numpy array of dtype {dtype_str!r} from the network")
    return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()


def dumps(doc: dict) -> bytes:
    """Serialize one bluesky document (bluesky's ``Publisher(serializer=dumps)``)."""
    return msgpack.packb(doc, default=_encode, use_bin_type=True)


def loads(data: bytes) -> dict:
    """Deserialize one document (``RemoteDispatcher(deserializer=loads)``); never runs code."""
    return msgpack.unpackb(data, ext_hook=_decode, raw=False, strict_map_key=False)
