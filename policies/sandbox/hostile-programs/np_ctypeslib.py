# ruff: noqa
# attempt: np.ctypeslib to load a shared library
# expect: forbidden
lib = np.ctypeslib.load_library("libc", "/lib")
