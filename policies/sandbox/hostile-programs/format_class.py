# ruff: noqa
# attempt: str.format field walks '{0.__class__}'
# expect: forbidden
print("{0.__class__.__mro__}".format(1))
