# ruff: noqa
# attempt: a suspended generator's finally moves the arm (and loops) after the program failed
# expect: runtime
# expect-line: 18
# max-api-calls: 0
def g(move=pick_place):
    try:
        yield 1
    finally:
        for i in range(5):
            move("red block", [0.1, -0.5, 0.3])
        while True:
            pass


it = g()
next(it)
raise ValueError("boom")
