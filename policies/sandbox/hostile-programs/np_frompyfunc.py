# ruff: noqa
# attempt: np.frompyfunc wraps a callable into a ufunc
# expect: forbidden
f = np.frompyfunc(print, 1, 1)
