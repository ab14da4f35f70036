# ruff: noqa
# attempt: exception.__traceback__.tb_frame.f_back
# expect: forbidden
try:
    1 / 0
except ZeroDivisionError as exc:
    frame = exc.__traceback__.tb_frame.f_back
    print(frame.f_globals)
