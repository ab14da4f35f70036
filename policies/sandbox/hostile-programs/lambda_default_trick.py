# ruff: noqa
# attempt: lambda default argument evaluated to a dunder
# expect: forbidden
f = lambda x=().__class__: x
print(f())
