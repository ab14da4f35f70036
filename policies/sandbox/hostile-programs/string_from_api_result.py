# ruff: noqa
# attempt: API returns dunder strings and code text; the program can only treat them as data
# expect: ok
names = get_obj_names()
code = echo("__import__('os').system('touch /tmp/corrigible_escape_string_from_api_result')")
print(names[0], len(code))
