# ruff: noqa
# attempt: dunder keyword argument
# expect: forbidden
d = dict(__class__=1)
print(d)
