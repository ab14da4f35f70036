# ruff: noqa
# attempt: class with a metaclass hook
# expect: forbidden
class Meta(type):
    pass


class A(metaclass=Meta):
    pass
