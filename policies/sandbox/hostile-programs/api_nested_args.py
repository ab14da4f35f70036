# ruff: noqa
# attempt: send deeply nested lists to the API
# expect: runtime
x = []
for i in range(100):
    x = [x]
say(x)
