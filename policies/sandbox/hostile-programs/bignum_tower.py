# ruff: noqa
# attempt: 10**10**10 bignum
# expect: timeout|memory
x = 10**10**10
