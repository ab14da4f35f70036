# ruff: noqa
# attempt: view/strides tricks for out-of-bounds memory reads
# expect: forbidden
a = np.zeros(2)
b = a.view(np.uint8)
print(a.strides)
