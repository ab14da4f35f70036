# ruff: noqa
# attempt: write "MemoryError" to stderr (an unraisable error), then crash, to be misclassified as memory
# expect: runtime
def g():
    try:
        yield 1
    finally:
        raise ValueError("MemoryError: Cannot allocate memory")


it = g()
next(it)
it = None  # finalised here: "Exception ignored ... MemoryError: ..." goes to stderr
print("MemoryError")
m = iter([0])
for i in range(200000):
    m = map(abs, m)
print(next(m))
