# ruff: noqa
# attempt: infinite generator consumed by any()
# expect: timeout
def gen():
    while True:
        yield 0


print(any(gen()))
