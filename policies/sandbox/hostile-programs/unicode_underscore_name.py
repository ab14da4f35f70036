# ruff: noqa
# attempt: U+FE4D..FE4F low lines in a name normalise to __builtins__
# expect: forbidden
print(_﹍builtins﹏﹏)
