# ruff: noqa
# attempt: print ten million characters at once
# expect: limit
print("x" * 10**7)
