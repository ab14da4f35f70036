# ruff: noqa
# attempt: type() to get classes and build new ones
# expect: forbidden
T = type(1)
Evil = type("Evil", (), {})
print(T, Evil)
