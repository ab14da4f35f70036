"""Wire format between the parent and the sandbox child: length-prefixed JSON frames.

Each frame is a 4-byte big-endian length followed by that many bytes of UTF-8 JSON holding one
object with a "t" (type) key. Only plain data crosses the pipe (numbers, strings, lists, dicts,
None, bools), never callables or pickles, so nothing the child sends can make the parent run
code other than the API function it names.

Child -> parent: started, lines, out, call, done.
Parent -> child: init (program, API names, limits), ret (an API call's result or error).

The child loads this module by file path (standard library only); keep it import-free.
"""

from __future__ import annotations

import json
import os
import struct
from typing import Any

_HEADER = struct.Struct(">I")
HEADER_SIZE = _HEADER.size

# Tag marking an ndarray in an API result: {"$nd": nested lists, "dtype": "float64"}.
NDARRAY_TAG = "$nd"
# dtype kinds an API result may carry (bool, ints, floats, complex), and the dtype names the
# child may re-create from a tag.
_ARRAY_KINDS = frozenset("biufc")
_ARRAY_DTYPES = frozenset(
    {"bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"}
    | {"float16", "float32", "float64", "complex64", "complex128"}
)
# Deepest nesting of lists/dicts accepted in either direction.
MAX_DEPTH = 32


# Internal errors: they never leave the sandbox. The executor turns them into a `SandboxResult`
# or an API error text and the child into a `TypeError` in the program, so they need not be
# `CorrigibleError`s, and cannot be: the child loads this file by path with the stdlib only.


class _ProtocolError(Exception):
    """A frame was malformed, too large, or of an unexpected type."""


class _WireTypeError(TypeError):
    """A value cannot be sent over the pipe (it is not plain data)."""


def encode(message: dict[str, Any]) -> bytes:
    """Returns the frame for `message` (header included)."""
    payload = json.dumps(message, separators=(",", ":"), allow_nan=True).encode("utf-8")
    return _HEADER.pack(len(payload)) + payload


def write_all(fd: int, data: bytes) -> None:
    """Writes every byte of `data` to `fd` (pipes may accept partial writes)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def send(fd: int, message: dict[str, Any]) -> int:
    """Encodes and writes one frame; returns its size in bytes."""
    frame = encode(message)
    write_all(fd, frame)
    return len(frame)


def _read_exact(fd: int, size: int) -> bytes | None:
    chunks: list[bytes] = []
    remaining = size
    while remaining:
        chunk = os.read(fd, min(remaining, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def receive(fd: int, max_size: int) -> dict[str, Any] | None:
    """Blocks until one frame arrives on `fd`; returns None at end of file.

    Raises:
        _ProtocolError: the frame is larger than `max_size` or is not a JSON object.
    """
    header = _read_exact(fd, HEADER_SIZE)
    if header is None:
        return None
    (size,) = _HEADER.unpack(header)
    if size > max_size:
        raise _ProtocolError(f"frame of {size} bytes exceeds the {max_size}-byte limit")
    payload = _read_exact(fd, size)
    if payload is None:
        return None
    return decode(payload)


def decode(payload: bytes) -> dict[str, Any]:
    """Parses one frame's payload.

    Raises:
        _ProtocolError: the payload is not a JSON object with a string "t".
    """
    try:
        message = json.loads(payload.decode("utf-8"))
    except (ValueError, RecursionError) as exc:
        raise _ProtocolError(f"undecodable frame: {exc}") from None
    if not isinstance(message, dict) or not isinstance(message.get("t"), str):
        raise _ProtocolError("frame is not an object with a string 't'")
    return message


class FrameReader:
    """Reassembles frames from the arbitrary chunks a non-blocking read returns."""

    def __init__(self, max_size: int) -> None:
        self._buffer = bytearray()
        self._max_size = max_size

    def feed(self, data: bytes) -> list[tuple[dict[str, Any], int]]:
        """Adds `data`; returns the complete (message, frame size) pairs now available.

        Raises:
            _ProtocolError: a frame announces more than `max_size` bytes or is malformed.
        """
        self._buffer += data
        out: list[tuple[dict[str, Any], int]] = []
        while len(self._buffer) >= HEADER_SIZE:
            (size,) = _HEADER.unpack_from(self._buffer)
            if size > self._max_size:
                raise _ProtocolError(
                    f"frame of {size} bytes exceeds the {self._max_size}-byte limit"
                )
            end = HEADER_SIZE + size
            if len(self._buffer) < end:
                break
            payload = bytes(self._buffer[HEADER_SIZE:end])
            del self._buffer[:end]
            out.append((decode(payload), end))
        return out


def to_wire(value: Any, *, tag_arrays: bool, depth: int = 0) -> Any:
    """Converts `value` to plain JSON-able data.

    NumPy arrays become nested lists (tagged with their dtype when `tag_arrays`, so the child
    can rebuild an ndarray), NumPy scalars become Python numbers and tuples become lists.

    Raises:
        _WireTypeError: `value` holds something other than plain data (a function, an object),
            a non-string dict key, or nests deeper than MAX_DEPTH.
    """
    if depth > MAX_DEPTH:
        raise _WireTypeError(f"value nests deeper than {MAX_DEPTH} levels")
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, list | tuple):
        return [to_wire(item, tag_arrays=tag_arrays, depth=depth + 1) for item in value]
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise _WireTypeError(f"dict keys must be strings, got {type(key).__name__}")
            out[key] = to_wire(item, tag_arrays=tag_arrays, depth=depth + 1)
        return out
    dtype = getattr(type(value), "dtype", None)
    if dtype is not None and hasattr(value, "tolist") and hasattr(value, "ndim"):
        # NumPy array or scalar, recognised without importing NumPy here.
        kind = value.dtype.kind
        if kind not in _ARRAY_KINDS or (value.ndim and str(value.dtype) not in _ARRAY_DTYPES):
            raise _WireTypeError(f"arrays of dtype {value.dtype} cannot be sent")
        data = value.tolist()
        if value.ndim == 0:
            return data
        if tag_arrays:
            return {NDARRAY_TAG: data, "dtype": str(value.dtype)}
        return data
    if isinstance(value, complex):
        raise _WireTypeError("complex numbers cannot be sent; send [real, imag]")
    raise _WireTypeError(f"a value of type {type(value).__name__!r} cannot be sent")


def from_wire(value: Any, array_factory: Any | None = None, depth: int = 0) -> Any:
    """Rebuilds tagged ndarrays (with `array_factory(data, dtype)`) inside decoded JSON data."""
    if depth > MAX_DEPTH:
        raise _WireTypeError(f"value nests deeper than {MAX_DEPTH} levels")
    if isinstance(value, list):
        return [from_wire(item, array_factory, depth + 1) for item in value]
    if isinstance(value, dict):
        if array_factory is not None and NDARRAY_TAG in value and len(value) == 2:
            dtype = value.get("dtype")
            if dtype not in _ARRAY_DTYPES:
                dtype = "float64"
            return array_factory(value[NDARRAY_TAG], dtype)
        return {key: from_wire(item, array_factory, depth + 1) for key, item in value.items()}
    return value
