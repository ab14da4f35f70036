# ruff: noqa
# attempt: send a function (a callable) to the parent
# expect: runtime
say(say)
