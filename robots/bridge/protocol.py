"""The rosbridge v2 protocol's operations as pydantic models, and their parsing from frames.

One text frame holds one JSON object with an `op` and, for most ops, an `id` that replies
echo. `parse_op` turns a frame into the model of its op, or raises `ProtocolError` with a
message a client can act on; the server never trusts a field it has not validated here.

Clients differ in what they send (roslibpy adds `latch`, `queue_size`, `compression` to
advertise and subscribe; roslib.js adds others), so unknown fields are ignored rather than
refused. Names and types are checked against ROS naming rules so that a topic name can be
logged and listed without escaping surprises.
"""

from __future__ import annotations

import json
import math
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from corrigible.errors import (
    ProtocolError,  # noqa: F401 - re-exported here
)

# A ROS graph name: optional leading slash, segments of letters, digits and underscores; the
# first character of a segment is a letter or "~". Bounded so a name can be logged safely.
_NAME = re.compile(r"^/?~?[A-Za-z][A-Za-z0-9_]*(/[A-Za-z][A-Za-z0-9_]*)*$")
# A message or service type: "pkg/Type" (ROS 1) or "pkg/msg/Type", "pkg/srv/Type" (ROS 2).
_TYPE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*/((msg|srv|action)/)?[A-Za-z][A-Za-z0-9_]*$")
MAX_NAME_CHARS = 256  # characters of a topic or service name
MAX_ID_CHARS = 256  # characters of an op's id
MAX_JSON_DEPTH = 32  # nesting levels of one message's JSON


Id = Annotated[str | int | None, Field(default=None)]


def _check_id(value: str | int | None) -> str | int | None:
    if isinstance(value, str) and len(value) > MAX_ID_CHARS:
        raise ValueError(f"id is longer than {MAX_ID_CHARS} characters")
    if isinstance(value, bool):
        raise ValueError("id must be a string or an integer, not a boolean")
    return value


def check_name(value: str, what: str = "topic") -> str:
    """A valid ROS graph name, made absolute ("joint_states" -> "/joint_states").

    Raises:
        ValueError: not a ROS name (too long, empty, or with characters ROS does not allow).
    """
    if len(value) > MAX_NAME_CHARS:
        raise ValueError(f"{what} name is longer than {MAX_NAME_CHARS} characters")
    if not _NAME.match(value):
        raise ValueError(
            f"{what} name {value[:80]!r} is not a ROS name (letters, digits, '_' and '/', "
            "each segment starting with a letter, e.g. '/joint_states')"
        )
    return value if value.startswith("/") else "/" + value


def check_type(value: str) -> str:
    """A valid message or service type, normalised to the ROS 1 spelling "pkg/Type".

    ROS 2's rosbridge also accepts "pkg/msg/Type"; both name the same type here, so the
    server compares and lists them in one spelling.

    Raises:
        ValueError: not of the form "pkg/Type" or "pkg/msg/Type".
    """
    if len(value) > MAX_NAME_CHARS or not _TYPE.match(value):
        raise ValueError(
            f"type {value[:80]!r} is not a ROS type; write it as 'pkg/Type', e.g. 'std_msgs/String'"
        )
    package, *_, name = value.split("/")
    return f"{package}/{name}"


class Op(BaseModel):
    """Fields every operation has."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    op: str
    id: Id

    @field_validator("id")
    @classmethod
    def _id_ok(cls, value: str | int | None) -> str | int | None:
        return _check_id(value)


class _Topical(Op):
    topic: str

    @field_validator("topic")
    @classmethod
    def _topic_ok(cls, value: str) -> str:
        return check_name(value, "topic")


class Advertise(_Topical):
    """A client will publish on `topic` with messages of `type`."""

    op: Literal["advertise"]
    type: str
    latch: bool = False  # ignored: the server keeps no latched messages of clients

    @field_validator("type")
    @classmethod
    def _type_ok(cls, value: str) -> str:
        return check_type(value)


class Unadvertise(_Topical):
    """A client stops publishing on `topic`."""

    op: Literal["unadvertise"]


class Publish(_Topical):
    """A message on a topic (client -> server, and server -> subscribed client)."""

    op: Literal["publish"]
    msg: dict[str, Any]
    latch: bool = False


class Subscribe(_Topical):
    """A client wants `topic`'s messages.

    At most one per `throttle_rate` ms, queued up to `queue_length`, split into fragments of
    `fragment_size` characters.
    """

    op: Literal["subscribe"]
    type: str | None = None
    throttle_rate: int = Field(default=0, ge=0, le=3_600_000)  # ms between messages
    queue_length: int = Field(default=0, ge=0)  # messages held for a slow client (0: default)
    fragment_size: int | None = Field(default=None, gt=0)  # characters per fragment
    compression: str = "none"  # only "none" is served

    @field_validator("type")
    @classmethod
    def _type_ok(cls, value: str | None) -> str | None:
        return None if value is None else check_type(value)

    @field_validator("compression")
    @classmethod
    def _compression_ok(cls, value: str) -> str:
        if value not in ("none", ""):
            raise ValueError(
                f"compression {value[:40]!r} is not served; subscribe with compression 'none'"
            )
        return "none"


class Unsubscribe(_Topical):
    """A client drops one subscription (by `id`) or all of its subscriptions to `topic`."""

    op: Literal["unsubscribe"]


class _Service(Op):
    service: str

    @field_validator("service")
    @classmethod
    def _service_ok(cls, value: str) -> str:
        return check_name(value, "service")


class CallService(_Service):
    """A service call. `args` may be a dict (roslibpy) or a list in field order (the spec)."""

    op: Literal["call_service"]
    args: dict[str, Any] | list[Any] | None = None
    fragment_size: int | None = Field(default=None, gt=0)
    compression: str = "none"
    timeout: float | None = Field(default=None, gt=0, allow_inf_nan=False)  # s


class ServiceResponse(_Service):
    """The answer to a call: `values` always present (roslibpy reads it even on failure)."""

    op: Literal["service_response"]
    values: Any = None
    result: bool = True


class AdvertiseService(_Service):
    """A client hosts `service`; the server forwards calls to it."""

    op: Literal["advertise_service"]
    type: str

    @field_validator("type")
    @classmethod
    def _type_ok(cls, value: str) -> str:
        return check_type(value)


class UnadvertiseService(_Service):
    """A client stops hosting `service`."""

    op: Literal["unadvertise_service"]


class Fragment(Op):
    """Part `num` (from 0) of `total` of a larger message whose JSON text is split in `data`."""

    op: Literal["fragment"]
    id: str | int  # type: ignore[assignment]  # required: it groups the parts
    data: str
    num: int = Field(ge=0)
    total: int = Field(ge=1)


class Auth(Op):
    """Authentication, the first op on a server with a token.

    Either the rosauth form (`mac` = hex SHA-512 of secret + client + dest + rand + t + level +
    end, as roslibpy's `Ros.authenticate` sends it) or `token` (the secret itself, for clients
    behind a TLS-terminating proxy).
    """

    op: Literal["auth"]
    token: str | None = Field(default=None, max_length=4096)
    mac: str | None = Field(default=None, max_length=256)
    client: str = Field(default="", max_length=256)
    dest: str = Field(default="", max_length=256)
    rand: str = Field(default="", max_length=256)
    t: Any = None  # seconds, or {"secs", "nsecs"}
    level: str = Field(default="", max_length=64)
    end: Any = None  # seconds, or {"secs", "nsecs"}


class SetLevel(Op):
    """The status level a client wants; only then does the server send `status` ops."""

    op: Literal["set_level"]
    level: Literal["none", "error", "warning", "info"]


OPS: dict[str, type[Op]] = {
    cls.model_fields["op"].annotation.__args__[0]: cls  # type: ignore[union-attr]
    for cls in (
        Advertise,
        Unadvertise,
        Publish,
        Subscribe,
        Unsubscribe,
        CallService,
        ServiceResponse,
        AdvertiseService,
        UnadvertiseService,
        Fragment,
        Auth,
        SetLevel,
    )
}


def loads(text: str | bytes) -> dict[str, Any]:
    """One frame's JSON object, within the depth limit; NaN and Infinity are refused.

    Raises:
        ProtocolError: not UTF-8 JSON, not an object, nested too deeply.
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProtocolError(
                f"binary frame is not UTF-8 JSON (byte {exc.start}); CBOR is not served, "
                "send JSON text frames"
            ) from None
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise ProtocolError(f"frame is not JSON ({exc.msg}; column {exc.colno})") from None
    except ValueError as exc:
        raise ProtocolError(f"frame is not JSON ({exc})") from None
    except RecursionError:
        raise ProtocolError(f"frame nests deeper than {MAX_JSON_DEPTH} levels") from None
    if not isinstance(value, dict):
        raise ProtocolError(f"frame must be a JSON object with an 'op', got {type(value).__name__}")
    if _depth(value) > MAX_JSON_DEPTH:
        raise ProtocolError(f"frame nests deeper than {MAX_JSON_DEPTH} levels; flatten it")
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _depth(value: Any) -> int:
    """Nesting depth of a loaded JSON value (iterative: a hostile frame cannot blow the stack)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            deepest = max(deepest, depth)
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            deepest = max(deepest, depth)
            stack.extend((v, depth + 1) for v in item)
        if deepest > MAX_JSON_DEPTH:
            break
    return deepest


def parse_op(message: dict[str, Any]) -> Op:
    """The validated model of one operation.

    Raises:
        ProtocolError: no or an unknown `op`, or a field missing or malformed (named).
    """
    op = message.get("op")
    if not isinstance(op, str):
        raise ProtocolError('frame has no \'op\' string (e.g. {"op": "subscribe", ...})')
    cls = OPS.get(op)
    if cls is None:
        raise ProtocolError(f"unknown op {op[:40]!r}; served: {', '.join(sorted(OPS))}")
    try:
        return cls.model_validate(message)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "frame"
        raise ProtocolError(f"{op}: field {field!r}: {first['msg']}") from None


def dumps(message: dict[str, Any]) -> str:
    """A message as compact JSON text; non-finite floats become null (JSON has none)."""
    try:
        return json.dumps(message, separators=(",", ":"), allow_nan=False)
    except ValueError:
        return json.dumps(_finite(message), separators=(",", ":"), allow_nan=False)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def service_response(
    call_id: str | int | None, service: str, values: Any, *, result: bool = True
) -> dict[str, Any]:
    """A `service_response`: always with `values` and the caller's `id` (roslibpy needs both)."""
    message: dict[str, Any] = {
        "op": "service_response",
        "service": service,
        "values": values,
        "result": result,
    }
    if call_id is not None:
        message["id"] = call_id
    return message


def fragments(text: str, message_id: str | int, size: int) -> list[dict[str, Any]]:
    """`text` split into `fragment` ops of at most `size` characters each."""
    parts = [text[i : i + size] for i in range(0, len(text), size)] or [""]
    return [
        {"op": "fragment", "id": message_id, "data": part, "num": n, "total": len(parts)}
        for n, part in enumerate(parts)
    ]


__all__ = [
    "OPS",
    "Advertise",
    "AdvertiseService",
    "Auth",
    "CallService",
    "Fragment",
    "Op",
    "ProtocolError",
    "Publish",
    "ServiceResponse",
    "SetLevel",
    "Subscribe",
    "Unadvertise",
    "UnadvertiseService",
    "Unsubscribe",
    "check_name",
    "check_type",
    "dumps",
    "fragments",
    "loads",
    "parse_op",
    "service_response",
]
