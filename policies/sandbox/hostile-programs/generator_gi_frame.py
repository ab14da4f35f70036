# ruff: noqa
# attempt: generator.gi_frame.f_back.f_globals to reach the child's globals
# expect: forbidden
def gen():
    yield 1


g = gen()
print(g.gi_frame.f_back.f_globals)
