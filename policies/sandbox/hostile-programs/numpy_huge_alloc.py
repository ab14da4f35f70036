# ruff: noqa
# attempt: np.zeros((10**6, 10**6))
# expect: memory
a = np.zeros((10**6, 10**6))
