# ruff: noqa
"put the red block in the blue bowl (buggy: a misspelt object name)"

put_first_on_second("red blok", "blue bowl")
checkpoint("red block placed", expect="in(red block, blue bowl)")
