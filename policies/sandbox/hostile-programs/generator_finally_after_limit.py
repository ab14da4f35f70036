# ruff: noqa
# attempt: a suspended generator's finally calls the robot after the program hit the print limit
# expect: limit
# max-api-calls: 0
def g(move=pick_place):
    try:
        yield 1
    finally:
        move("red block", [0.1, -0.5, 0.3])


it = g()
next(it)
while True:
    print("spam" * 100)
