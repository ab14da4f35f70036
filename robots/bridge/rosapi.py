"""The rosapi introspection services a rosbridge client expects, served from the server's tables.

roslibpy's `Ros.get_topics`, `get_topic_type`, `get_services`, `get_time`, `get_params` ... and
roslib.js call these; answers follow rosapi's field names (ROS 1 spelling, with the ROS 2 time
fields added so either client reads its own). There is no ROS graph, so `/rosapi/nodes` lists
the bridge itself, message details are empty, and parameters live in the server's memory.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from corrigible.errors import ConfigError

if TYPE_CHECKING:
    from corrigible.robots.bridge.server import RosbridgeServer

NODE = "/corrigible_bridge"  # the one node this bridge shows
_MAX_PARAMS = 1000  # parameters kept; set_param beyond refuses
_MAX_PARAM_CHARS = 65_536  # characters of one parameter's JSON value


def add_rosapi(server: RosbridgeServer) -> None:
    """Registers the /rosapi/* services on `server`."""

    def topics(_: dict[str, Any]) -> dict[str, Any]:
        known = sorted(server.topics().items())
        return {"topics": [t for t, _ in known], "types": [k for _, k in known]}

    def topic_type(args: dict[str, Any]) -> dict[str, Any]:
        return {"type": server.topics().get(_absolute(args.get("topic")), "")}

    def topics_for_type(args: dict[str, Any]) -> dict[str, Any]:
        wanted = _short_type(args.get("type"))
        return {"topics": sorted(t for t, k in server.topics().items() if k == wanted)}

    def services(_: dict[str, Any]) -> dict[str, Any]:
        known = sorted(server.services().items())
        return {"services": [s for s, _ in known], "types": [k for _, k in known]}

    def service_type(args: dict[str, Any]) -> dict[str, Any]:
        return {"type": server.services().get(_absolute(args.get("service")), "")}

    def services_for_type(args: dict[str, Any]) -> dict[str, Any]:
        wanted = _short_type(args.get("type"))
        return {"services": sorted(s for s, k in server.services().items() if k == wanted)}

    def get_time(_: dict[str, Any]) -> dict[str, Any]:
        secs, nsecs = divmod(time.time_ns(), 1_000_000_000)
        return {"time": {"secs": secs, "nsecs": nsecs, "sec": secs, "nanosec": nsecs}}

    def nodes(_: dict[str, Any]) -> dict[str, Any]:
        return {"nodes": [NODE]}

    def node_details(_: dict[str, Any]) -> dict[str, Any]:
        known = server.topics()
        return {
            "subscribing": sorted(known),
            "publishing": sorted(known),
            "services": sorted(server.services()),
        }

    def topics_and_raw_types(_: dict[str, Any]) -> dict[str, Any]:
        known = sorted(server.topics().items())
        return {
            "topics": [t for t, _ in known],
            "types": [k for _, k in known],
            "typedefs_full_text": ["" for _ in known],
        }

    def empty_typedefs(_: dict[str, Any]) -> dict[str, Any]:
        return {"typedefs": []}  # no message definitions without ROS

    def get_param_names(_: dict[str, Any]) -> dict[str, Any]:
        return {"names": sorted(server._params)}

    def get_param(args: dict[str, Any]) -> dict[str, Any]:
        name = _absolute(args.get("name"))
        default = args.get("default", "")
        return {"value": server._params.get(name, default if isinstance(default, str) else "")}

    def set_param(args: dict[str, Any]) -> dict[str, Any]:
        name, value = _absolute(args.get("name")), args.get("value", "")
        if not isinstance(value, str) or len(value) > _MAX_PARAM_CHARS:
            raise ConfigError(f"set_param: 'value' must be JSON text of <= {_MAX_PARAM_CHARS}")
        try:
            json.loads(value)
        except ValueError:
            raise ConfigError("set_param: 'value' must be JSON text, e.g. '3' or '\"a\"'") from None
        if name not in server._params and len(server._params) >= _MAX_PARAMS:
            raise ConfigError(f"set_param: {_MAX_PARAMS} parameters already; delete some first")
        server._params[name] = value
        return {}

    def has_param(args: dict[str, Any]) -> dict[str, Any]:
        return {"exists": _absolute(args.get("name")) in server._params}

    def delete_param(args: dict[str, Any]) -> dict[str, Any]:
        server._params.pop(_absolute(args.get("name")), None)
        return {}

    def action_servers(_: dict[str, Any]) -> dict[str, Any]:
        return {"action_servers": []}

    table: list[tuple[str, str, Any, tuple[str, ...]]] = [
        ("topics", "rosapi/Topics", topics, ()),
        ("topic_type", "rosapi/TopicType", topic_type, ("topic",)),
        ("topics_for_type", "rosapi/TopicsForType", topics_for_type, ("type",)),
        ("topics_and_raw_types", "rosapi/TopicsAndRawTypes", topics_and_raw_types, ()),
        ("services", "rosapi/Services", services, ()),
        ("service_type", "rosapi/ServiceType", service_type, ("service",)),
        ("services_for_type", "rosapi/ServicesForType", services_for_type, ("type",)),
        ("get_time", "rosapi/GetTime", get_time, ()),
        ("nodes", "rosapi/Nodes", nodes, ()),
        ("node_details", "rosapi/NodeDetails", node_details, ("node",)),
        ("message_details", "rosapi/MessageDetails", empty_typedefs, ("type",)),
        ("service_request_details", "rosapi/ServiceRequestDetails", empty_typedefs, ("type",)),
        ("service_response_details", "rosapi/ServiceResponseDetails", empty_typedefs, ("type",)),
        ("get_param_names", "rosapi/GetParamNames", get_param_names, ()),
        ("get_param", "rosapi/GetParam", get_param, ("name", "default")),
        ("set_param", "rosapi/SetParam", set_param, ("name", "value")),
        ("has_param", "rosapi/HasParam", has_param, ("name",)),
        ("delete_param", "rosapi/DeleteParam", delete_param, ("name",)),
        ("action_servers", "rosapi/GetActionServers", action_servers, ()),
    ]
    for name, srv_type, handler, fields in table:
        server.advertise_service(f"/rosapi/{name}", srv_type, handler, fields=fields)


def _absolute(name: Any) -> str:
    if not isinstance(name, str) or not name:
        raise ConfigError("give the name as a non-empty string, e.g. '/joint_states'")
    return name if name.startswith("/") else "/" + name


def _short_type(kind: Any) -> str:
    if not isinstance(kind, str):
        raise ConfigError("give the type as a string, e.g. 'std_msgs/String'")
    package, *_, name = kind.split("/")
    return f"{package}/{name}"


__all__ = ["NODE", "add_rosapi"]
