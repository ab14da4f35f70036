# ruff: noqa
# attempt: generator.gi_code.co_consts
# expect: forbidden
def gen():
    yield 1


print(gen().gi_code.co_consts)
