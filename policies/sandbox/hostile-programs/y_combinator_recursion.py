# ruff: noqa
# attempt: unbounded recursion through lambdas only (Y combinator)
# expect: runtime
Y = lambda f: (lambda x: f(lambda v: x(x)(v)))(lambda x: f(lambda v: x(x)(v)))
loop = Y(lambda rec: lambda n: rec(n + 1))
loop(0)
