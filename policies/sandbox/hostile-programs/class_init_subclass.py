# ruff: noqa
# attempt: class definition to get __init_subclass__/__subclasses__
# expect: forbidden
class A:
    def hook(self):
        return 1


print(A().hook())
