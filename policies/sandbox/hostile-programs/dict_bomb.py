# ruff: noqa
# attempt: dict comprehension over 10**9 keys
# expect: memory|timeout
d = {i: i for i in range(10**9)}
