# ruff: noqa
# attempt: nonlocal statement
# expect: forbidden
def f():
    x = 1

    def g():
        nonlocal x
        x = 2

    g()


f()
