# ruff: noqa
# attempt: many API calls with values just under the trace's per-value cap, to bloat the api_calls trace
# expect: ok
for i in range(45):
    echo("x" * 16000)
