# ruff: noqa
"put the red block in the blue bowl (buggy: it picks and never places)"

pick("red block")
checkpoint("red block placed", expect="in(red block, blue bowl)")
