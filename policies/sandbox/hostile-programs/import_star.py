# ruff: noqa
# attempt: star import into the namespace
# expect: forbidden
from os import *

print(getcwd())
