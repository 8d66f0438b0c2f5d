"""Promotion (DESIGN §19): aliases — a Hub branch or tag, an S3 prefix, a Replicate deployment —
moved to a succeeded, delivered run only when its metrics pass every condition of `spec.promote`.

`gate` decides, purely, where each alias should be (the planner calls it); `targets` moves an
alias there, reading it first so that a repeated or crashed move changes nothing twice (apply
calls it). Nothing here is imported by `trainops --help` or `validate`.
"""
