# ruff: noqa
# attempt: benign: string methods and f-strings
# expect: ok
name = "  Red Block  ".strip().lower()
parts = name.split(" ")
label = "-".join(p.upper() for p in parts)
print(f"{label!r} {len(parts):03d} {3.14159:.2f}")
