"""rosbridge v2 over websockets: the protocol, a ROS-free server, and a session exposed on it."""
