# ruff: noqa
# attempt: np.vectorize with a lambda reaching __class__
# expect: forbidden
f = np.vectorize(lambda x: x.__class__)
print(f(np.zeros(2)))
