# ruff: noqa
# attempt: walrus binding of __builtins__ in a comprehension
# expect: forbidden
print([(b := __builtins__) for _ in range(1)])
