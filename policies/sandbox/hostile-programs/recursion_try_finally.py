# ruff: noqa
# attempt: recursion inside try/finally runs exponentially long
# expect: timeout
def f():
    try:
        f()
    finally:
        f()


f()
