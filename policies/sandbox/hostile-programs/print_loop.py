# ruff: noqa
# attempt: print in an endless loop
# expect: limit
while True:
    print("spam " * 20)
