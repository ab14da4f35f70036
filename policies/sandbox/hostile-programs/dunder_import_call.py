# ruff: noqa
# attempt: __import__('os') from the builtins
# expect: forbidden
__import__("os").system("touch /tmp/corrigible_escape_dunder_import_call")
