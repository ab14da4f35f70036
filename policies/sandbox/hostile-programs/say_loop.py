# ruff: noqa
# attempt: say() in an endless loop (API-call flood)
# expect: limit
while True:
    say("hello")
