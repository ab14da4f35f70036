# ruff: noqa
# attempt: np.save to a marker file
# expect: forbidden
np.save("/tmp/corrigible_escape_np_save", np.zeros(3))
