"""Maps the top-level folders onto the single import package `corrigible`.

The repository keeps `robots/`, `policies/`, ... at the top for readability, but installs them
as `corrigible.robots`, `corrigible.policies`, ... so that no generic top-level name (ROS 2 owns
`launch`) lands in site-packages.
"""

from setuptools import find_packages, setup

_SUBPACKAGES = ("robots", "policies", "corrections", "memory", "sim_envs", "launch")

_found = find_packages(include=[f"{name}*" for name in _SUBPACKAGES])
setup(
    packages=["corrigible"] + [f"corrigible.{pkg}" for pkg in _found],
    package_dir={"corrigible": "."}
    | {f"corrigible.{pkg}": pkg.replace(".", "/") for pkg in _found},
)
