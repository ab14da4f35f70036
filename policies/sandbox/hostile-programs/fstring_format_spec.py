# ruff: noqa
# attempt: format spec built from a string that looks like a field (no field is interpreted)
# expect: runtime
spec = "{0.__class__}"
print(f"{1:{spec}}")
