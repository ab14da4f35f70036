"""Automatic program repair: checkpoint monitors, failure localisation, repair, fault injection.

The closed loop (HyCodePolicy's): the controller captures evidence at each checkpoint, a
monitor judges it (`monitors`), a failure is localised by fusing the verdicts with the trace
(`localise`), the program is repaired and resumed without a human (`loop`), and a repair that
worked is remembered in the knowledge base (`remember`). `faults` injects failures for
evaluation. README.md documents the failure classes and the fault file.
"""
