# ruff: noqa
# attempt: rebinding np to something else
# expect: forbidden
np = 1
