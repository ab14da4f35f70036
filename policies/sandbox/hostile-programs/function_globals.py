# ruff: noqa
# attempt: function.__globals__ and func_globals
# expect: forbidden
def f():
    return 1


print(f.__globals__)
print(f.func_globals)
