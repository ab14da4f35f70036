# ruff: noqa
# attempt: dtype.type -> scalar class -> __subclasses__
# expect: forbidden
a = np.zeros(2)
print(a.dtype.type.__subclasses__())
