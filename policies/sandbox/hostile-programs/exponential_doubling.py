# ruff: noqa
# attempt: double a list until memory runs out
# expect: memory
x = [1]
while True:
    x = x + x
