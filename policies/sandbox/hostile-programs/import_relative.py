# ruff: noqa
# attempt: relative import of a sibling module
# expect: forbidden
from . import executor

print(executor)
