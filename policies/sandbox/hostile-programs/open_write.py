# ruff: noqa
# attempt: open() a marker file for writing
# expect: forbidden
f = open("/tmp/corrigible_escape_open_write", "w")
f.write("escaped")
