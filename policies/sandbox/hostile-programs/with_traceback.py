# ruff: noqa
# attempt: exception.with_traceback to attach frames
# expect: forbidden
try:
    1 / 0
except ZeroDivisionError as exc:
    print(exc.with_traceback(None))
