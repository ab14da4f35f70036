# ruff: noqa
# attempt: a skill that fails and is not caught
# expect: runtime
fail_skill("blue block")
