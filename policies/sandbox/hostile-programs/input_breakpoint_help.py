# ruff: noqa
# attempt: interactive builtins: input(), breakpoint(), help()
# expect: forbidden
x = input("? ")
breakpoint()
help(print)
