# ruff: noqa
# attempt: np.load a file (pickle allowed would be code execution)
# expect: forbidden
print(np.load("/etc/hostname", allow_pickle=True))
