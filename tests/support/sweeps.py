"""Sweep sets for planner and renderer tests (DESIGN §21): a set's members as `Target`s and the
`Desired` that carries them and the set, built as validate's expansion builds them: each member
is the template with its value in `input` and its name `<set>.<suffix>` (`member_name`)."""

from __future__ import annotations

from typing import Any

from tests.support.factories import job
from trainops.manifest import Job, Member, Sweep, SweepSet, revision
from trainops.plan import Desired, Target


def sweep(
    name: str,
    values: list[Any],
    *,
    max_parallel: int | None = None,
    total: float | None = None,
    select: tuple[str, str] | None = None,
    axis: str = "lr",
    **spec: Any,
) -> Desired:
    """One set `name` of one axis (`axis`: `values`, in that order), every member's `input`
    taking its value; `select` is `(metric, goal)`; `spec` is the template's other fields."""
    targets = []
    for value in values:
        template = job(name, input={axis: value}, **spec)
        member = Member(name, {axis: value})
        meta = template.manifest.metadata.model_copy(update={"name": member.name})
        manifest = template.manifest.model_copy(update={"metadata": meta})
        targets.append(Target(Job(manifest, template.doc, member), revision(manifest.spec)))
    sweep_set = SweepSet(
        name,
        tuple(t.name for t in targets),
        Sweep.model_validate(
            {
                "max_parallel": max_parallel,
                "select": {"metric": select[0], "goal": select[1]} if select else None,
            }
        ),
        total,
        axes=(axis,),
    )
    return Desired({t.name: t for t in targets}, sets={name: sweep_set})


def members_of(desired: Desired, set_name: str) -> list[str]:
    return list(desired.sets[set_name].members)
