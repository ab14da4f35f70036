"""Event arrays and their files: a NumPy structured dtype, written as HDF5 or NumPy `.npz`.

Both formats are columnar (one array per field) so any HDF5 or NumPy reader can open them
without this package:

* HDF5 (`.h5`, `.hdf5`): datasets `events/t` (int64 µs), `events/x` (uint16), `events/y`
  (uint16), `events/p` (uint8, 1 = ON, 0 = OFF); file attributes `width`, `height`,
  `format` = "corrigible-events", `version` = 1, `t_unit` = "us", plus any metadata given.
* NumPy (`.npz`): arrays `t`, `x`, `y`, `p` as above and a JSON string `meta` holding the same
  attributes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from corrigible.errors import ConfigError, DependencyNotInstalled, ParseError

# One event: timestamp in integer microseconds (as AEDAT and jAER use), pixel column x, pixel
# row y (origin top-left, as the frame arrays index [y, x]) and polarity (1 = ON, 0 = OFF).
EVENT_DTYPE = np.dtype([("t", "<i8"), ("x", "<u2"), ("y", "<u2"), ("p", "u1")])
_FORMAT = "corrigible-events"
_VERSION = 1
_FIELDS = ("t", "x", "y", "p")


def _import_h5py() -> Any:
    """h5py, needed only for the HDF5 format (the `events` extra; `.npz` needs nothing more)."""
    try:
        import h5py
    except ImportError as exc:
        raise DependencyNotInstalled(
            "HDF5 event files (.h5, .hdf5) need h5py; pip install 'corrigible[events]', "
            "or use a .npz path, which needs no extra package."
        ) from exc
    return h5py


def empty_events() -> np.ndarray:
    """An empty event array of `EVENT_DTYPE`."""
    return np.empty(0, dtype=EVENT_DTYPE)


def write_events(
    path: str | Path,
    events: np.ndarray,
    *,
    width: int,
    height: int,
    meta: Mapping[str, Any] | None = None,
) -> Path:
    """Writes events to `.h5`/`.hdf5` (HDF5, gzip-compressed columns) or `.npz`.

    Args:
        path: destination; its suffix picks the format.
        events: structured array of `EVENT_DTYPE`.
        width: sensor width in pixels (stored so readers can size frames).
        height: sensor height in pixels.
        meta: extra JSON-able attributes, e.g. the biases used.

    Returns:
        The path written.

    Raises:
        ConfigError: for an unknown suffix or a wrong dtype.
    """
    path = Path(path)
    if events.dtype != EVENT_DTYPE:
        raise ConfigError(
            f"events have dtype {events.dtype}, expected {EVENT_DTYPE}; build them with "
            "EventEmulator or np.zeros(n, dtype=EVENT_DTYPE)."
        )
    attrs: dict[str, Any] = {
        "format": _FORMAT,
        "version": _VERSION,
        "t_unit": "us",
        "width": int(width),
        "height": int(height),
        **dict(meta or {}),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    if suffix in (".h5", ".hdf5"):
        h5py = _import_h5py()

        with h5py.File(path, "w") as f:
            group = f.create_group("events")
            for name in _FIELDS:
                data = np.ascontiguousarray(events[name])
                chunks = (min(len(data), 1 << 16),) if len(data) else None
                group.create_dataset(
                    name, data=data, compression="gzip" if len(data) else None, chunks=chunks
                )
            for key, value in attrs.items():
                f.attrs[key] = json.dumps(value) if isinstance(value, dict | list) else value
    elif suffix == ".npz":
        np.savez(path, **{name: events[name] for name in _FIELDS}, meta=np.array(json.dumps(attrs)))
    else:
        raise ConfigError(f"unknown event file suffix {suffix!r} in {path}; use .h5 or .npz.")
    return path


def read_events(path: str | Path) -> tuple[np.ndarray, dict[str, Any]]:
    """Reads a file written by `write_events`.

    Returns:
        The events as an `EVENT_DTYPE` array and the attribute dictionary.

    Raises:
        ParseError: when the file lacks the event columns.
        ConfigError: for an unknown suffix.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".h5", ".hdf5"):
        h5py = _import_h5py()

        with h5py.File(path, "r") as f:
            if "events" not in f:
                raise ParseError(f"{path} has no 'events' group; was it written by write_events?")
            columns = {name: f["events"][name][()] for name in _FIELDS}
            meta = {k: _decode_attr(v) for k, v in f.attrs.items()}
    elif suffix == ".npz":
        with np.load(path) as data:
            missing = [n for n in (*_FIELDS, "meta") if n not in data]
            if missing:
                raise ParseError(f"{path} lacks arrays {missing}; was it written by write_events?")
            columns = {name: data[name] for name in _FIELDS}
            meta = json.loads(str(data["meta"]))
    else:
        raise ConfigError(f"unknown event file suffix {suffix!r} in {path}; use .h5 or .npz.")
    events = np.empty(len(columns["t"]), dtype=EVENT_DTYPE)
    for name in _FIELDS:
        events[name] = columns[name]
    return events, meta


def _decode_attr(value: Any) -> Any:
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    if isinstance(value, np.generic):
        return value.item()
    return value
