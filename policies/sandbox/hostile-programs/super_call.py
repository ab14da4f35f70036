# ruff: noqa
# attempt: super() proxy outside a class
# expect: forbidden
def f():
    return super()


f()
