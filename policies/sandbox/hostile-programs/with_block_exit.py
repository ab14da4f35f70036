# ruff: noqa
# attempt: with-block whose __exit__ would receive a traceback
# expect: forbidden
with say("hi") as s:
    print(s)
