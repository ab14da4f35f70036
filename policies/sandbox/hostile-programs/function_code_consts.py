# ruff: noqa
# attempt: function.__code__.co_consts / co_code
# expect: forbidden
def f():
    return 1


print(f.__code__.co_code)
