# ruff: noqa
# attempt: full-width letters NFKC-normalise to exec
# expect: forbidden
ｅｘｅｃ("print(1)")
