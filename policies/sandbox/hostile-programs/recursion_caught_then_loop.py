# ruff: noqa
# attempt: catch the RecursionError (calling the line tracer fails, so CPython drops it), then loop unseen
# expect: timeout
# expect-line: 15|16
def f(n):
    return f(n + 1)


try:
    f(0)
except Exception:
    pass
x = 0
say("looping")
while True:
    x += 1
