# ruff: noqa
# attempt: np.lib.stride_tricks.as_strided for arbitrary memory reads
# expect: forbidden
x = np.lib.stride_tricks.as_strided(np.zeros(1), shape=(10**6,), strides=(8,))
