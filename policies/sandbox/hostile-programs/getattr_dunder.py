# ruff: noqa
# attempt: getattr with a dunder string to reach __class__
# expect: forbidden
cls = getattr((), "__cl" + "ass__")
print(cls)
