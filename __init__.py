"""corrigible: robots corrected in plain language that remember the correction.

The repository root is this package; its subpackages are `robots`, `policies`, `corrections`,
`memory`, `sim_envs` and `launch`.
"""

__version__ = "0.1.0"
