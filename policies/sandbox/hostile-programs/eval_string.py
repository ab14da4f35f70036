# ruff: noqa
# attempt: eval a string that imports os
# expect: forbidden
eval("__import__('os').system('touch /tmp/corrigible_escape_eval_string')")
