# ruff: noqa
# attempt: ndarray.base / .data buffer owners
# expect: forbidden
a = np.zeros(3)
print(a.base, a.data)
