# ruff: noqa
# attempt: from-import of a function
# expect: forbidden
from os import system

system("touch /tmp/corrigible_escape_import_from")
