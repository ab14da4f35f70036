"""The rosbridge v2 server with the real roslibpy client and raw websocket frames, on loopback.

What roslibpy 2.x needs of a server is checked as roslibpy itself sees it (it raises on any op
it has no handler for, so a stray `status` fails these tests); what roslibpy never sends
(list args, throttling, fragments, set_level) is checked with raw frames.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import threading
import time
from typing import Any

import pytest
import roslibpy
from rosbridge_testing import ros_client, wait_for
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from corrigible.errors import ConfigError
from corrigible.robots.bridge.server import BridgeLimits, RosbridgeServer


def _recv_all(ws: Any, seconds: float) -> list[dict[str, Any]]:
    """Every frame received within `seconds`, decoded."""
    frames, deadline = [], time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            frames.append(json.loads(ws.recv(timeout=left)))
        except TimeoutError:
            break
    return frames


def test_roslibpy_subscribes_publishes_calls_services_and_introspects(server) -> None:
    commands: list[dict[str, Any]] = []
    server.advertise("/joint_states", "sensor_msgs/JointState")
    server.on_publish("/arm/command", "trajectory_msgs/JointTrajectory", commands.append)
    server.advertise_service(
        "/add_two_ints",
        "rospy_tutorials/AddTwoInts",
        lambda args: {"sum": args["a"] + args["b"]},
        fields=("a", "b"),
    )
    received: list[dict[str, Any]] = []
    with ros_client(server.port) as ros:
        roslibpy.Topic(ros, "/joint_states", "sensor_msgs/JointState").subscribe(received.append)
        command = roslibpy.Topic(ros, "/arm/command", "trajectory_msgs/JointTrajectory")
        command.advertise()
        assert wait_for(lambda: server.subscriber_count("/joint_states") == 1)
        for i in range(5):
            server.publish("/joint_states", {"name": ["j1"], "position": [0.1 * i]})
        point = {"positions": [0.0, 0.5], "time_from_start": {"secs": 1, "nsecs": 0}}
        command.publish(roslibpy.Message({"joint_names": ["j1", "j2"], "points": [point]}))
        assert wait_for(lambda: len(received) == 5 and len(commands) == 1)
        assert [m["position"][0] for m in received] == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])
        assert commands[0]["points"][0]["positions"] == [0.0, 0.5]

        add = roslibpy.Service(ros, "/add_two_ints", "rospy_tutorials/AddTwoInts")
        assert add.call(roslibpy.ServiceRequest({"a": 2, "b": 40}), timeout=5)["sum"] == 42
        topics = ros.get_topics()
        assert {"/joint_states", "/arm/command"} <= set(topics)
        assert ros.get_topic_type("/arm/command") == "trajectory_msgs/JointTrajectory"
        services = ros.get_services()
        assert {"/add_two_ints", "/rosapi/topics", "/rosapi/get_time"} <= set(services)
        assert ros.get_service_type("/add_two_ints") == "rospy_tutorials/AddTwoInts"
        assert abs(ros.get_time().to_sec() - time.time()) < 5
        assert ros.get_nodes() == ["/corrigible_bridge"]
        ros.set_param("/gain", 2.5)  # roslibpy sends it as JSON text
        assert ros.get_param("/gain") == 2.5
        assert "/gain" in ros.get_params()
        ros.delete_param("/gain")
        assert "/gain" not in ros.get_params()


_ASYNCIO_CLIENT = """
import json, sys, time, roslibpy
ros = roslibpy.Ros("127.0.0.1", int(sys.argv[1]), transport="asyncio")
ros.run(timeout=10)
got = []
roslibpy.Topic(ros, "/joint_states", "sensor_msgs/JointState").subscribe(got.append)
deadline = time.monotonic() + 10
while not got and time.monotonic() < deadline:
    time.sleep(0.05)
add = roslibpy.Service(ros, "/add_two_ints", "rospy_tutorials/AddTwoInts")
total = add.call(roslibpy.ServiceRequest({"a": 2, "b": 40}), timeout=5)["sum"]
print(json.dumps({"topics": ros.get_topics(), "sum": total, "got": got[:1]}))
ros.close()
"""


def test_roslibpy_asyncio_transport_is_served_too(server) -> None:
    # roslibpy's two autobahn transports cannot share a process: this one runs in its own
    server.advertise("/joint_states", "sensor_msgs/JointState")
    server.advertise_service(
        "/add_two_ints", "x/AddTwoInts", lambda a: {"sum": a["a"] + a["b"]}, fields=("a", "b")
    )
    stop = threading.Event()

    def publish() -> None:
        while not stop.wait(0.05):
            server.publish("/joint_states", {"name": ["j1"], "position": [0.5]})

    threading.Thread(target=publish, daemon=True).start()
    try:
        out = subprocess.run(
            [sys.executable, "-c", _ASYNCIO_CLIENT, str(server.port)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        stop.set()
    assert out.returncode == 0, out.stderr
    answer = json.loads(out.stdout.strip().splitlines()[-1])
    assert answer["sum"] == 42 and "/joint_states" in answer["topics"]
    assert answer["got"] == [{"name": ["j1"], "position": [0.5]}]


def test_failed_calls_carry_values_and_the_server_never_sends_status(server) -> None:
    def broken(_: dict[str, Any]) -> dict[str, Any]:
        raise ValueError("the gripper is offline")

    server.advertise_service("/broken", "std_srvs/Trigger", broken)
    with ros_client(server.port) as ros:
        with pytest.raises(roslibpy.core.ServiceException, match="not advertised"):
            roslibpy.Service(ros, "/missing", "std_srvs/Trigger").call({}, timeout=5)
        with pytest.raises(roslibpy.core.ServiceException, match="gripper is offline"):
            roslibpy.Service(ros, "/broken", "std_srvs/Trigger").call({}, timeout=5)
        # the connection survived both failures (roslibpy raises on an unknown op like status)
        assert "/broken" in ros.get_services()

    with connect(server.url) as ws:
        for frame in ("not json", "[1]", '{"op": 3}', '{"op": "status"}', '{"op": "publish"}'):
            ws.send(frame)
        ws.send(json.dumps({"op": "call_service", "id": 7, "service": "/missing"}))
        (reply,) = _recv_all(ws, 1.0)  # the call's answer only: no status for the bad frames
        assert reply["op"] == "service_response" and reply["id"] == 7
        assert reply["result"] is False and "not advertised" in reply["values"]
        ws.send(json.dumps({"op": "set_level", "level": "error"}))
        ws.send('{"op": "subscribe", "topic": "no spaces allowed"}')
        (status,) = _recv_all(ws, 1.0)  # asked for: now errors are reported
        assert status["op"] == "status" and status["level"] == "error"
        assert "not a ROS name" in status["msg"]


def test_service_args_may_be_a_list_or_a_dict_and_responses_echo_the_id(server) -> None:
    server.advertise_service(
        "/add_two_ints", "x/AddTwoInts", lambda a: {"sum": a["a"] + a["b"]}, fields=("a", "b")
    )
    with connect(server.url) as ws:
        calls = [
            {"op": "call_service", "id": "as-list", "service": "/add_two_ints", "args": [1, 2]},
            {"op": "call_service", "id": 5, "service": "/add_two_ints", "args": {"a": 3, "b": 4}},
            {"op": "call_service", "id": "too-many", "service": "/add_two_ints", "args": [1, 2, 3]},
            {"op": "call_service", "service": "/rosapi/topic_type", "args": ["/nothing"]},
        ]
        for call in calls:
            ws.send(json.dumps(call))
        replies = _recv_all(ws, 1.5)
    by_id = {r.get("id"): r for r in replies}
    assert by_id["as-list"]["values"] == {"sum": 3}
    assert by_id[5]["values"] == {"sum": 7}
    assert by_id["too-many"]["result"] is False and "send a dict" in by_id["too-many"]["values"]
    assert by_id[None]["values"] == {"type": ""}
    assert all("values" in r for r in replies)


def test_throttle_rate_and_queue_length_are_honoured(server) -> None:
    server.advertise("/count", "std_msgs/Int32")
    with connect(server.url) as throttled, connect(server.url) as queued:
        throttled.send(json.dumps({"op": "subscribe", "topic": "/count", "throttle_rate": 300}))
        queued.send(
            json.dumps(
                {"op": "subscribe", "topic": "/count", "throttle_rate": 100, "queue_length": 3}
            )
        )
        assert wait_for(lambda: server.subscriber_count("/count") == 2)
        for i in range(20):  # a burst: the queue keeps the newest 3
            server.publish("/count", {"data": i})
        burst = _recv_all(queued, 1.0)
        for i in range(20, 60):  # 1.2 s at 33 Hz: the throttle lets about 5 through
            server.publish("/count", {"data": i})
            time.sleep(0.03)
        slow = _recv_all(throttled, 0.8)
    queued_values = [m["msg"]["data"] for m in burst]
    # the newest 3 (the sender may have taken the first before the rest of the burst arrived)
    assert queued_values[-3:] == [17, 18, 19] and len(queued_values) <= 4, queued_values
    values = [m["msg"]["data"] for m in slow]
    assert 3 <= len(values) <= 8, values  # the first burst's newest, then about 1 per 300 ms
    assert values == sorted(values) and values[-1] >= 50  # newest kept, none repeated


def test_fragment_size_splits_messages_and_fragments_are_reassembled(server) -> None:
    got: list[dict[str, Any]] = []
    server.advertise("/big", "std_msgs/String")
    server.on_publish("/in", "std_msgs/String", got.append)
    with connect(server.url) as ws:
        ws.send(json.dumps({"op": "subscribe", "topic": "/big", "fragment_size": 300}))
        assert wait_for(lambda: server.subscriber_count("/big") == 1)
        server.publish("/big", {"data": "x" * 2000})
        parts = _recv_all(ws, 1.0)
        assert {p["op"] for p in parts} == {"fragment"} and len(parts) > 5
        assert [p["num"] for p in parts] == list(range(parts[0]["total"]))
        whole = json.loads("".join(p["data"] for p in parts))
        assert whole == {"op": "publish", "topic": "/big", "msg": {"data": "x" * 2000}}
        assert max(len(p["data"]) for p in parts) == 300

        text = json.dumps({"op": "publish", "topic": "/in", "msg": {"data": "hello " * 30}})
        chunks = [text[i : i + 25] for i in range(0, len(text), 25)]
        order = list(reversed(range(len(chunks))))  # out of order, one duplicated
        for n in [*order, order[0]]:
            frame = {"op": "fragment", "id": "f1", "data": chunks[n], "num": n}
            ws.send(json.dumps({**frame, "total": len(chunks)}))
        assert wait_for(lambda: len(got) == 1)
    assert got == [{"data": "hello " * 30}]


def test_a_client_hosted_service_is_called_by_another_client_and_from_python(server) -> None:
    def add(request: dict[str, Any], response: dict[str, Any]) -> bool:
        response["sum"] = request["a"] + request["b"]
        return True

    with ros_client(server.port) as host, ros_client(server.port) as caller:
        service = roslibpy.Service(host, "/remote_add", "rospy_tutorials/AddTwoInts")
        service.advertise(add)
        assert wait_for(lambda: "/remote_add" in server.services())
        remote = roslibpy.Service(caller, "/remote_add", "rospy_tutorials/AddTwoInts")
        assert remote.call(roslibpy.ServiceRequest({"a": 20, "b": 22}), timeout=5)["sum"] == 42
        assert server.call_service("/remote_add", {"a": 1, "b": 1}, timeout_s=5) == {"sum": 2}
    assert wait_for(lambda: "/remote_add" not in server.services())  # the host left


@pytest.mark.parametrize("host", ["0.0.0.0", "", "192.168.1.20", "robot.local", "::"])
def test_a_non_loopback_bind_without_a_token_is_refused(host: str) -> None:
    with pytest.raises(ConfigError, match="without authentication") as caught:
        RosbridgeServer(host, 0)
    assert "--token-file" in str(caught.value) and "127.0.0.1" in str(caught.value)
    RosbridgeServer(host, 0, token="a-long-random-secret")  # with a token it may be built


def test_with_a_token_clients_authenticate_first(tmp_path) -> None:
    token = "0123456789abcdef-secret"
    with RosbridgeServer(port=0, token=token) as server:
        server.advertise("/state", "std_msgs/String")
        # roslibpy's rosauth form: mac = sha512(secret client dest rand t level end)
        t = int(time.time())
        parts = ("127.0.0.1", "127.0.0.1", "r4nd0m", str(t), "user", str(t + 60))
        mac = hashlib.sha512((token + "".join(parts)).encode()).hexdigest()
        ros = roslibpy.Ros("127.0.0.1", server.port)
        ros.authenticate(mac, "127.0.0.1", "127.0.0.1", "r4nd0m", t, "user", t + 60)
        ros.run(timeout=10)
        try:
            assert "/state" in ros.get_topics()
        finally:
            ros.close()
        with connect(server.url) as ws:  # the plain token form (behind a TLS proxy)
            ws.send(json.dumps({"op": "auth", "token": token}))
            ws.send(json.dumps({"op": "call_service", "id": 1, "service": "/rosapi/topics"}))
            assert "/state" in json.loads(ws.recv(timeout=5))["values"]["topics"]
        refusals = [
            {"op": "subscribe", "topic": "/state"},  # no auth first
            {"op": "auth", "token": "wrong"},
            {"op": "auth", "mac": mac, "client": parts[0], "dest": parts[1], "rand": "r4nd0m",
             "t": t, "level": "user", "end": t + 60},  # the same mac again: a replay
        ]  # fmt: skip
        for first in refusals:
            with connect(server.url) as ws:
                ws.send(json.dumps(first))
                with pytest.raises(ConnectionClosed) as closed:
                    ws.recv(timeout=5)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
        assert server.stats["refused.auth"] == 3


def test_limits_refuse_the_excess_and_keep_the_connection() -> None:
    limits = BridgeLimits(
        max_subscriptions=3, max_messages_per_s=50, burst=60, max_frame_bytes=4096
    )
    with RosbridgeServer(port=0, limits=limits) as server:
        with connect(server.url) as ws:
            for i in range(5):
                ws.send(json.dumps({"op": "subscribe", "topic": f"/t{i}", "type": "std_msgs/Int8"}))
            assert wait_for(lambda: server.stats["refused.subscribe"] == 2)
            for _ in range(200):  # 200 frames at once: the bucket lets `burst` through
                ws.send(json.dumps({"op": "unsubscribe", "topic": "/none"}))
            assert wait_for(lambda: server.stats["dropped.rate"] >= 100)
            time.sleep(0.5)  # the bucket refills
            ws.send(json.dumps({"op": "call_service", "id": 1, "service": "/rosapi/topics"}))
            assert sorted(json.loads(ws.recv(timeout=5))["values"]["topics"]) == [
                "/t0",
                "/t1",
                "/t2",
            ]
        with connect(server.url, max_size=None) as ws:
            ws.send("x" * 5000)  # over max_frame_bytes: this connection is closed (1009)
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=5)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
        with ros_client(server.port) as ros:  # the server goes on serving
            assert ros.get_topics() == []


def test_publishing_before_advertise_and_type_clashes_are_refused(server) -> None:
    with pytest.raises(ConfigError, match="advertise"):
        server.publish("/nowhere", {"data": 1})
    server.advertise("/state", "std_msgs/String")
    with pytest.raises(ConfigError, match="has type std_msgs/String"):
        server.advertise("/state", "std_msgs/Int32")
    with pytest.raises(ConfigError, match="not a ROS name"):
        server.advertise("/bad name", "std_msgs/String")
    server.advertise("/typed", "sensor_msgs/msg/JointState")  # ROS 2 spelling, same type
    assert server.topics()["/typed"] == "sensor_msgs/JointState"


def test_stop_is_idempotent_and_a_taken_port_is_a_clear_error(server) -> None:
    with pytest.raises(ConfigError, match="pick another --port"):
        RosbridgeServer(port=server.port).start()
    other = RosbridgeServer(port=0).start()
    other.stop()
    other.stop()
    done = threading.Event()
    threading.Thread(target=lambda: (server.stop(), done.set()), daemon=True).start()
    assert done.wait(10)
