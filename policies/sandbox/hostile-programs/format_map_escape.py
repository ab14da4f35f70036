# ruff: noqa
# attempt: format_map field walks attributes of an API stub
# expect: forbidden
print("{f.__globals__}".format_map({"f": say}))
