# ruff: noqa
# attempt: NaN and infinities in API arguments and results, to make the JSON trace invalid
# expect: ok
echo(float("nan"))
echo([float("inf"), -float("inf"), math.nan])
say(math.inf, {"x": -math.inf})
pick_place("red block", [float("nan"), 0.0, 0.0])
