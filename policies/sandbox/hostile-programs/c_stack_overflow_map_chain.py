# ruff: noqa
# attempt: crash the interpreter with a C stack overflow through 200000 nested map objects
# expect: runtime
g = iter([0])
for i in range(200000):
    g = map(abs, g)
print(next(g))
