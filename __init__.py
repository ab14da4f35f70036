"""corrigible: robots corrected in plain language that remember the correction.

The repository root is this package; its subpackages are `robots`, `policies`, `corrections`,
`memory`, `sim_envs` and `launch`.
"""

import os as _os

# MuJoCo picks its OpenGL platform when it is first imported; headless CPU rendering needs EGL
# (or OSMesa), so choose it before any subpackage can import mujoco. An explicit setting wins.
_os.environ.setdefault("MUJOCO_GL", "egl")

__version__ = "0.1.0"

# The public entry point, imported on first use so `import corrigible` stays light.
__all__ = ["Session", "SessionConfig", "SessionEvent", "__version__"]


def __getattr__(name: str) -> object:
    if name in ("Session", "SessionConfig", "SessionEvent", "EpisodeResult"):
        from corrigible import session

        return getattr(session, name)
    raise AttributeError(f"module 'corrigible' has no attribute {name!r}")
