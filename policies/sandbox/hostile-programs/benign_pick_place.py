# ruff: noqa
# attempt: benign: ordinary Code-as-Policies program
# expect: ok
block_names = [n for n in get_obj_names() if "block" in n]
for name in block_names:
    pos = get_obj_pos(name)
    target = pos + np.array([0.0, 0.1, 0.0])
    pick_place(name, target)
say(f"moved {len(block_names)} blocks")
