# ruff: noqa
# attempt: match class pattern looks up __class__ by name
# expect: forbidden
match ():
    case tuple(__class__=c):
        print(c)
