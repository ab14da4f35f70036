# ruff: noqa
# attempt: spend the time inside robot calls, which the wall-clock limit used to exclude
# expect: timeout
# expect-message: inside the robot API call slow_skill()
while True:
    slow_skill(10)
