# ruff: noqa
# attempt: alias np then reach load through the alias
# expect: forbidden
n = np
data = n.load("/etc/hostname")
