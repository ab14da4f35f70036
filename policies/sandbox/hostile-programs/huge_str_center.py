# ruff: noqa
# attempt: str.center to 10**10 characters
# expect: memory
s = "".center(10**10)
