# ruff: noqa
# attempt: endless loop inside an except handler
# expect: timeout
try:
    1 / 0
except ZeroDivisionError:
    while True:
        pass
