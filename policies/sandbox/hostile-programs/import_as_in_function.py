# ruff: noqa
# attempt: import hidden inside a function body
# expect: forbidden
def helper():
    import subprocess as sp

    return sp


helper()
