# ruff: noqa
# attempt: iter(int, 1) never ends inside C code (no line events)
# expect: timeout
print(sum(iter(int, 1)))
