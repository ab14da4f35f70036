# ruff: noqa
# attempt: async generator's ag_frame
# expect: forbidden
async def agen():
    yield 1


print(agen().ag_frame)
