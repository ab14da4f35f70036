# ruff: noqa
# attempt: iter(api, sentinel) drives the robot API from C code with no program lines
# expect: limit
for x in iter(get_obj_names, None):
    pass
