# ruff: noqa
# attempt: np.lib.format.open_memmap
# expect: forbidden
m = np.lib.format.open_memmap("/tmp/corrigible_escape_np_lib_format", mode="w+", shape=(2,))
