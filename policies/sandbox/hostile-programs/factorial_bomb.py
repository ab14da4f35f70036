# ruff: noqa
# attempt: math.factorial of a huge number
# expect: timeout|memory
print(math.factorial(10**8))
