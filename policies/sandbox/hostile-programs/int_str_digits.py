# ruff: noqa
# attempt: convert a 100000-digit integer to str (CPU-heavy quadratic conversion)
# expect: runtime
print(str(10**100000)[:5])
