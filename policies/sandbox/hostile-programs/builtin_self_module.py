# ruff: noqa
# attempt: a builtin's __self__ is the builtins module
# expect: forbidden
print(len.__self__.open)
