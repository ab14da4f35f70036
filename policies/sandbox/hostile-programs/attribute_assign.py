# ruff: noqa
# attempt: assigning attributes onto API stubs
# expect: forbidden
say.tracked = 1
