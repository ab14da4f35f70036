# ruff: noqa
# attempt: a command the safety envelope refuses
# expect: safety
unsafe_move([0, 0, -1])
