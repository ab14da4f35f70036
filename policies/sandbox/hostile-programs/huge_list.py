# ruff: noqa
# attempt: allocate a list of 10**10 items
# expect: memory
x = [0] * 10**10
