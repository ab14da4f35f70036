# ruff: noqa
# attempt: unbounded recursion (RecursionError is caught as runtime)
# expect: runtime
def f(n):
    return f(n + 1)


f(0)
