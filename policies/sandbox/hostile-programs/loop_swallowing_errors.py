# ruff: noqa
# attempt: endless loop that swallows every exception with bare except
# expect: timeout
while True:
    try:
        while True:
            pass
    except:
        pass
