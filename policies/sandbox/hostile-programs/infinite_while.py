# ruff: noqa
# attempt: while True: pass
# expect: timeout
while True:
    pass
