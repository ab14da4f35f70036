# ruff: noqa
# attempt: vars()/dir()/globals()/locals() to see the child's namespace
# expect: forbidden
print(vars())
print(dir())
print(globals()["__builtins__"])
print(locals())
