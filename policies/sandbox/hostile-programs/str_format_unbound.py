# ruff: noqa
# attempt: str.format called unbound, with a function argument
# expect: forbidden
print(str.format("{0.__globals__[np]}", say))
