# ruff: noqa
# attempt: walk ().__class__.__bases__[0].__subclasses__() to os._wrap_close and call system()
# expect: forbidden
classes = ().__class__.__bases__[0].__subclasses__()
wrap = [c for c in classes if c.__name__ == "_wrap_close"][0]
wrap.__init__.__globals__["system"]("touch /tmp/corrigible_escape_dunder_subclasses")
