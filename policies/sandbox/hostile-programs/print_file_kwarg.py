# ruff: noqa
# attempt: print(file=...) to redirect output
# expect: runtime
print("x", file=1)
