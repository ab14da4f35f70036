"""corrigible: robots corrected in plain language that remember the correction.

The repository root is this package; its subpackages are `robots`, `policies`, `corrections`,
`memory`, `sim_envs` and `launch`.
"""

import os as _os

# MuJoCo picks its OpenGL platform when it is first imported; headless CPU rendering needs EGL
# (or OSMesa), so choose it before any subpackage can import mujoco. An explicit setting wins.
_os.environ.setdefault("MUJOCO_GL", "egl")

__version__ = "0.1.0"
