# ruff: noqa
"put the red and green blocks in the blue bowl (buggy: the loop stops one short)"

names = ["red block", "green block"]
for i in range(len(names) - 1):
    put_first_on_second(names[i], "blue bowl")
    checkpoint(names[i] + " placed", expect="in(" + names[i] + ", blue bowl)")
checkpoint("all placed", expect="in(red block, blue bowl) and in(green block, blue bowl)")
