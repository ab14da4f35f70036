# ruff: noqa
# attempt: read __builtins__ and pull open/__import__ out of it
# expect: forbidden
b = __builtins__
b["open"]("/tmp/corrigible_escape_dunder_builtins_dict", "w")
