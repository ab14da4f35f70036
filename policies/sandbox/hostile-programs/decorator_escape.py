# ruff: noqa
# attempt: decorator built from getattr on a dunder
# expect: forbidden
@getattr(print, "__self__").open
def x():
    pass
