"""Evaluation loops, kept apart from the library code they score.

Library packages never import this package. One module per evaluation, named for what it
scores; its docstring names the CLI verb that runs it.

The event-camera evaluation is split along its seams: `config_event_camera` (the pydantic model
of `event_camera.yaml` and its JSON Schema), `event_camera` (render, emulate with each controller
in the loop, score) and `report_event_camera` (acceptance, table, plot, JSON).
"""
