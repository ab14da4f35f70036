# ruff: noqa
# attempt: catch the RecursionError at the recursion limit and loop there, where no handler fits
# expect: timeout
# expect-line: 8|9
def f():
    try:
        f()
    except Exception:
        while True:
            pass


f()
