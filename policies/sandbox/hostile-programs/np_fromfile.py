# ruff: noqa
# attempt: np.fromfile to read /etc/passwd
# expect: forbidden
print(np.fromfile("/etc/passwd", dtype=np.uint8))
