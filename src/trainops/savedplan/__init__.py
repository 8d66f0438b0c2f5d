"""Saved plans (DESIGN §20): `plan --out FILE` binds a plan's actions to the commit, the state
version, the lock digest and the price table; `apply FILE` carries them out only when the pass
it makes plans exactly those actions from exactly that, and `show FILE` prints one.

The package is the file, by noun: its shape (`model`: `SavedPlanDoc`, `schemas/plan.v1.json`
is generated from it), its digest (`digest`), writing it (`write`: every string scrubbed, the
file is a CI artifact), reading a file a user may have edited, truncated or brought from
elsewhere (`read`: a located problem, never a traceback), what went stale (`stale`, pure) and
the `Plan` that `show` renders (`show`). docs/saved-plans.md.
"""
