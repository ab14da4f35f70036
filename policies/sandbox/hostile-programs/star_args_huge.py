# ruff: noqa
# attempt: star-args of a hundred million items into an API call
# expect: memory|limit|runtime
say(*range(10**8))
