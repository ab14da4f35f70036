# ruff: noqa
# attempt: plain import statement
# expect: forbidden
import os

os.system("touch /tmp/corrigible_escape_import_plain")
