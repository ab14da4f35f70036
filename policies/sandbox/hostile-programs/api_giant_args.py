# ruff: noqa
# attempt: send a 10 MB string to the robot API
# expect: runtime
say("x" * 10**7)
