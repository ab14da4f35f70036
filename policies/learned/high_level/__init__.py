"""Yell At Your Robot's high level: an instructor that picks the next language instruction.

`high_level.py` is the network and its checkpoints, `task_family.py` the long-horizon pack task
it is trained and judged on, `episodes.py` the rollouts with the simulated person's corrections,
`training.py` the seeded training loop and `evaluation.py` the before/after evaluation. See the
README for the design; `corrigible train hl` (launch/train_hl.py) runs it all.
"""
