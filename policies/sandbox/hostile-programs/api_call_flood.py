# ruff: noqa
# attempt: perception query flood
# expect: limit
for i in range(10**6):
    get_obj_pos("red block")
