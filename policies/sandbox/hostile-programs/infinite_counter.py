# ruff: noqa
# attempt: endless counting loop with arithmetic
# expect: timeout
i = 0
while i >= 0:
    i += 1
