# ruff: noqa
# attempt: printing a self-referential list
# expect: ok
a = []
a.append(a)
print(a)
