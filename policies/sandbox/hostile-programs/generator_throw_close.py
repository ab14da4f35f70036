# ruff: noqa
# attempt: generator.throw/close/send internals
# expect: forbidden
def gen():
    yield 1


g = gen()
next(g)
g.throw(ValueError)
