# ruff: noqa
# attempt: except* syntax (exception groups)
# expect: forbidden
try:
    pass
except* ValueError:
    pass
