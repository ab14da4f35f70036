# ruff: noqa
# attempt: send an exception object (with its traceback) to the parent through the API
# expect: runtime
try:
    1 / 0
except ZeroDivisionError as exc:
    echo(exc)
