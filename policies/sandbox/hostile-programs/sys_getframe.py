# ruff: noqa
# attempt: sys._getframe() without importing sys
# expect: forbidden
f = sys._getframe(0)
print(f)
