"""Learning from episodes in the weights: recorded datasets, a learned low level and high level.

`recording/` writes sessions as LeRobot datasets; `low_level/` is a language-conditioned
visuomotor policy behind the skill API; `high_level/` is Yell At Your Robot's instructor,
fine-tuned on the corrections people gave.
"""
