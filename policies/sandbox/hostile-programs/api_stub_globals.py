# ruff: noqa
# attempt: the API stub's __globals__ would hold the child's runtime
# expect: forbidden
print(say.__globals__["runtime"])
