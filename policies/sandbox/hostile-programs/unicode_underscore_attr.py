# ruff: noqa
# attempt: U+FE33 PRESENTATION FORM FOR VERTICAL LOW LINE normalises to '_' (._︳class︳︳ == .__class__)
# expect: forbidden
print(()._︳class︳︳)
