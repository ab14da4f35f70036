# ruff: noqa
# attempt: benign: generators, lambdas, comprehensions, helper functions
# expect: ok
def corners(size):
    for sx in (-1, 1):
        for sy in (-1, 1):
            yield (sx * size, sy * size)


def closest(points, target):
    return min(points, key=lambda p: (p[0] - target[0]) ** 2 + (p[1] - target[1]) ** 2)


pts = list(corners(0.3))
print(closest(pts, (0.2, 0.25)), sorted({p[0] for p in pts}))
