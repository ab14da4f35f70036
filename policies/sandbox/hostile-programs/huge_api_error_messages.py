# ruff: noqa
# attempt: API errors that quote a 60 kB argument, caught, to bloat error messages and the trace
# expect: ok
name = "x" * 60000
for i in range(45):
    try:
        get_obj_pos(name)
    except Exception as exc:
        text = str(exc)
print(len(text) < 10000)
