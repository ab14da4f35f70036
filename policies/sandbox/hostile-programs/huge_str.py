# ruff: noqa
# attempt: 'a' * 10**10
# expect: memory
s = "a" * 10**10
