# ruff: noqa
# attempt: object array of API stubs through a ufunc that looks methods up by name
# expect: runtime
arr = np.array([say, print], dtype="O")
print(np.sqrt(arr))
