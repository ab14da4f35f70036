# ruff: noqa
# attempt: print(*huge) builds an enormous argument tuple
# expect: memory|limit
print(*([1] * 10**8))
