# ruff: noqa
# attempt: import numpy's ctypes bridge directly
# expect: forbidden
import numpy.ctypeslib as cl

print(cl)
