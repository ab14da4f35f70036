# ruff: noqa
# attempt: ndarray.ctypes.data raw pointer
# expect: forbidden
a = np.zeros(3)
print(a.ctypes.data)
