# ruff: noqa
"put the red block in the blue bowl (buggy: the wrong place target)"

put_first_on_second("red block", "top left corner")
checkpoint("red block placed", expect="in(red block, blue bowl)")
