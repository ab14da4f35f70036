# ruff: noqa
# attempt: send a 5000-digit integer to the API
# expect: runtime
say(10**5000)
