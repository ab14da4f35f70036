# ruff: noqa
# attempt: deleting attributes
# expect: forbidden
del np.array
