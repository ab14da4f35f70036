# ruff: noqa
# attempt: np.empty to read uninitialised heap memory
# expect: forbidden
print(np.empty(1000))
