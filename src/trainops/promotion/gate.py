"""Where each alias of `spec.promote` should point, from recorded runs alone (pure, no I/O).

The candidate is the latest succeeded run of the job's current revision. If its metrics pass
every condition, the alias belongs to it; if not, to the latest earlier run (by when it was
submitted) that passes the same conditions and whose outputs reached the alias's source — so a
worse run never replaces a better one, and a `git revert` of the manifest moves the alias back to
the previous run that passed, without training anything. A condition on a metric the run did not
report fails (closed).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from trainops.manifest import AnySpec, PromoteTarget, parse_condition
from trainops.state.model import Health, Run

DONE = "done"  # the alias points at this run
HELD = "held: "  # this run failed a condition; the alias stays elsewhere
SUPERSEDED = "superseded by run "  # the alias pointed here, then moved on
FAILED = "failed: "  # moving the alias failed; the next apply tries again

_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}
_NEGATED = {"<": ">=", "<=": ">", ">": "<=", ">=": "<", "==": "!=", "!=": "=="}


def failures(when: Mapping[str, str], metrics: Mapping[str, float]) -> list[str]:
    """Each condition that does not hold, as a user reads it: which metric, its value, the
    threshold (`eval_loss 0.31 is not < 0.25`). Empty: every condition holds."""
    out = []
    for name, condition in sorted(when.items()):
        op, threshold = parse_condition(condition)
        value = metrics.get(name)
        if value is None:
            out.append(f"{name} was not reported (needs {op} {threshold:g})")
        elif not _OPS[op](value, threshold):
            out.append(f"{name} {value:g} is not {op} {threshold:g}")
    return out


def source_key(spec: AnySpec, target: PromoteTarget) -> str:
    """The delivery (`spec.deliver` key) an alias takes its content from; "" when the alias
    takes it from the run itself (a Replicate deployment takes the run's model version)."""
    if target.huggingface is not None:
        return f"huggingface:{target.huggingface.repo}"
    if target.s3 is not None:
        keys = [d.key for d in spec.deliver if d.s3 is not None]
        return keys[0] if keys else "s3:"
    return ""


def own_commit(spec: AnySpec, target: PromoteTarget, run: Run) -> str:
    """A Hugging Face job pushes to its `output_repo` itself: the commit its `weights` output
    names (`repo@commit`), when the alias is a ref of that repository ("" otherwise)."""
    repo = target.huggingface.repo if target.huggingface is not None else None
    if repo is None or getattr(spec, "output_repo", None) != repo:
        return ""
    name, _, commit = run.outputs.get("weights", "").partition("@")
    return commit if name == repo else ""


def source(spec: AnySpec, target: PromoteTarget, run: Run, job: str) -> str:
    """What the alias is pointed at for `run`: the Hub commit or S3 prefix its delivery
    recorded (or the commit a Hugging Face job pushed), the model version for a deployment."""
    if target.replicate is not None:
        return run.outputs.get("version", "")
    key = source_key(spec, target)
    where = run.delivered.get(key, "") if run.deliveries.get(key) == DONE else ""
    if target.s3 is not None:
        # The state branch is input (DESIGN §9): copy only from where this job's delivery of
        # this revision writes, never from a prefix a forged record names.
        return where if where and where == delivered_prefix(key, job, run) else ""
    return where or own_commit(spec, target, run)


def delivered_prefix(key: str, job: str, run: Run) -> str:
    """Where an S3 delivery (`s3:<uri>`) puts a run's files: `<uri>/<job>/<revision>/`."""
    bucket, _, prefix = key.removeprefix("s3:").removeprefix("s3://").partition("/")
    base = "/".join(p for p in (prefix.strip("/"), job, run.revision) if p)
    return f"s3://{bucket}/{base}/"


def reached(run: Run, spec: AnySpec, target: PromoteTarget, job: str) -> bool:
    """The run's outputs are where the alias takes them from (its delivery is done, or it
    produced a model version)."""
    return bool(source(spec, target, run, job))


@dataclass(frozen=True)
class Decision:
    """Where one alias should be, and what each run's record for it should say."""

    target: str  # PromoteTarget.key
    candidate: Run  # the latest succeeded run of the current revision
    holder: Run | None  # the run the alias should point at; None: leave it untouched
    held: tuple[str, ...]  # the candidate's failed conditions (empty: it passed)
    waiting: bool = False  # the candidate's deliveries are not done yet: decide later

    @property
    def verdict(self) -> str:
        """What the candidate's record says once this decision is carried out."""
        if not self.held:
            return DONE
        where = (
            f"the alias stays on run {self.holder.run_id}"
            if self.holder is not None
            else "no earlier run passed, the alias is left as it was"
        )
        return HELD + "; ".join(self.held) + f"; {where}"

    def expected(self, run: Run) -> str | None:
        """What `run`'s record for this target should say (None: nothing)."""
        if run.run_id == self.candidate.run_id:
            return self.verdict
        if self.holder is not None and run.run_id == self.holder.run_id:
            return DONE
        current = run.promotions.get(self.target)
        if current == DONE:
            holder = self.holder.run_id if self.holder is not None else "?"
            return f"{SUPERSEDED}{holder}"
        return current

    def settled(self, runs: Sequence[Run]) -> bool:
        return all(r.promotions.get(self.target) == self.expected(r) for r in runs if r.run_id)


def decide(spec: AnySpec, runs: Sequence[Run], candidate: Run, job: str) -> list[Decision]:
    """One decision per alias of `spec.promote` of job `job` for `candidate`, the latest
    succeeded run of its current revision (see the module docstring)."""
    promote = spec.promote
    if promote is None or candidate.health is not Health.SUCCEEDED or not candidate.run_id:
        return []
    held = tuple(failures(promote.when, candidate.metrics))
    earlier = sorted(
        (
            r
            for r in runs
            if r.run_id
            and r.run_id != candidate.run_id
            and r.health is Health.SUCCEEDED
            and r.created_at < candidate.created_at
        ),
        key=lambda r: r.created_at,
    )
    undelivered = any(v != DONE for v in candidate.deliveries.values()) or any(
        d.key not in candidate.deliveries for d in spec.deliver
    )
    out = []
    for target in promote.to:
        holder: Run | None = candidate if not held else None
        if held:
            holder = next(
                (
                    r
                    for r in reversed(earlier)
                    if reached(r, spec, target, job) and not failures(promote.when, r.metrics)
                ),
                None,
            )
        out.append(Decision(target.key, candidate, holder, held, waiting=undelivered))
    return out


__all__ = [
    "DONE",
    "FAILED",
    "HELD",
    "SUPERSEDED",
    "Decision",
    "decide",
    "failures",
    "reached",
    "source",
]
