# ruff: noqa
# attempt: global statement to rebind module names
# expect: forbidden
def f():
    global np
    np = None


f()
