# ruff: noqa
# attempt: full-width getattr with a dunder string
# expect: forbidden
ｇｅｔａｔｔｒ(print, "__self__")
