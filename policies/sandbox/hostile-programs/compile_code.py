# ruff: noqa
# attempt: compile() a code object to run later
# expect: forbidden
code = compile("1 + 1", "x", "eval")
print(code)
