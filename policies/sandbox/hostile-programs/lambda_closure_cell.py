# ruff: noqa
# attempt: lambda.__closure__[0].cell_contents
# expect: forbidden
secret = 1
f = lambda: secret
print(f.__closure__[0].cell_contents)
