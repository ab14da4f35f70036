# ruff: noqa
# attempt: raise an exception with a megabyte message
# expect: runtime
raise ValueError("x" * 10**6)
