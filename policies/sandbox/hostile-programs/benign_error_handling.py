# ruff: noqa
# attempt: benign: catches a failed skill and an unknown object
# expect: ok
try:
    fail_skill("blue block")
except SkillError as exc:
    print("skill failed:", exc)
try:
    get_obj_pos("unicorn")
except UnknownObjectError as exc:
    print("no such object:", exc)
