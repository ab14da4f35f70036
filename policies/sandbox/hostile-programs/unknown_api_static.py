# ruff: noqa
# attempt: call a function nobody defined
# expect: unknown_api
pick_up_everything()
