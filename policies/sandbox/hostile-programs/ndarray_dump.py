# ruff: noqa
# attempt: ndarray.dump pickles to a file
# expect: forbidden
np.zeros(3).dump("/tmp/corrigible_escape_ndarray_dump")
