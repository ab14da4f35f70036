# ruff: noqa
# attempt: attribute walk inside an f-string expression
# expect: forbidden
print(f"{say.__globals__}")
