# ruff: noqa
# attempt: reach object through str.mro() then its subclasses
# expect: forbidden
base = str.mro()[-1]
print(base)
