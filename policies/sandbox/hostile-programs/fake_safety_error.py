# ruff: noqa
# attempt: the program raises the API's own SafetyError class itself (only changes the class)
# expect: safety
raise SafetyError("pretend the envelope refused")
