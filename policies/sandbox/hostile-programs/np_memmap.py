# ruff: noqa
# attempt: np.memmap a marker file
# expect: forbidden
m = np.memmap("/tmp/corrigible_escape_np_memmap", dtype="uint8", mode="w+", shape=(4,))
