# ruff: noqa
# attempt: async def coroutine's cr_frame
# expect: forbidden
async def coro():
    return 1


c = coro()
print(c.cr_frame)
