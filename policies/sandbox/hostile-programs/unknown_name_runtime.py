# ruff: noqa
# attempt: use an undefined name (not called)
# expect: unknown_api
x = table_centre
