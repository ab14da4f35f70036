# ruff: noqa
# attempt: exec a string containing an import
# expect: forbidden
exec("import os; os.system('touch /tmp/corrigible_escape_exec_string')")
