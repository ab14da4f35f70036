# ruff: noqa
"put the red block in the blue bowl (buggy: the place target is missing)"

put_first_on_second("red block")
checkpoint("red block placed", expect="in(red block, blue bowl)")
