# ruff: noqa
# attempt: exception __context__/__cause__ chain
# expect: forbidden
try:
    say(say)
except TypeError as exc:
    print(exc.__context__)
