"""What a run is submitted with (DESIGN §2, §9, §18): its input with output references resolved,
its data packages staged, and the snapshot of the fully resolved manifest that is committed to
the state branch beside its intent.

Inputs: a `Job`, the refreshed state and the desired jobs; a provider and packages to stage.
Outputs: the resolved input (`resolve_input`), the staged input keys (`stage_data`), the
snapshot's text (`snapshot_text`). Used by the intents, act and drift phases.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import yaml

from trainops.errors import TrainopsError
from trainops.manifest import OUTPUT_REF, Job
from trainops.manifest.sweep import member_line
from trainops.plan import Desired, upstream_outputs
from trainops.state.model import JobState, Run

if TYPE_CHECKING:
    from trainops.data import Package

SNAPSHOT_SCHEMA = "trainops/v1"


def resolve_input(job: Job, state: Mapping[str, JobState], desired: Desired) -> dict[str, Any]:
    """Substitute `${{ jobs.NAME.output.KEY }}` with the upstream run's recorded output (the
    planner does not submit a job whose references do not resolve)."""

    def outputs_of(name: str) -> Mapping[str, str]:
        return upstream_outputs(name, desired, state)

    def sub(value: Any) -> Any:
        if isinstance(value, str):

            def one(match: Any) -> str:
                name, key = match.group(1), match.group(2)
                outputs = outputs_of(name)
                if key not in outputs:
                    known = ", ".join(sorted(outputs)) or "none"
                    raise TrainopsError(
                        f"{job.file}: {job.name}: job {name!r} has no output {key!r} "
                        f"(its outputs: {known})",
                        "fix the reference in spec.input",
                    )
                return outputs[key]

            return OUTPUT_REF.sub(one, value)
        if isinstance(value, dict):
            return {k: sub(v) for k, v in value.items()}
        if isinstance(value, list):
            return [sub(v) for v in value]
        return value

    resolved = dict(sub(dict(job.spec.input)))
    target = desired.targets.get(job.name)
    packages = target.packages if target is not None else {}
    # A data key holds its package's digest until the provider stages it (DESIGN §18): the
    # intent's input hash and the snapshot are stable across passes and crashes.
    resolved.update({key: placeholder(pkg) for key, pkg in sorted(packages.items())})
    return resolved


def placeholder(pkg: Package) -> str:
    from trainops.data import placeholder as of

    return of(pkg)


def stage_data(provider: object, packages: Mapping[str, Package]) -> dict[str, str]:
    """Each package staged by `provider` (DataInputs), by input key; {} when there is none."""
    if not packages:
        return {}
    from trainops.errors import ProviderError
    from trainops.providers.base import DataInputs

    if not isinstance(provider, DataInputs):
        refused = ProviderError(
            f"provider {getattr(provider, 'name', '?')!r} cannot take spec.data"
        )
        refused.retryable = False  # type: ignore[attr-defined]
        raise refused
    return {key: provider.stage(pkg) for key, pkg in sorted(packages.items())}


def snapshot_text(
    job: Job, revision: str, resolved: Mapping[str, Any], run: Run, tree: str = ""
) -> str:
    """The fully resolved manifest that was submitted, with where it came from (§9): the source
    commit and its tree, the files a local or Ray run executes (§13b)."""
    manifest = job.manifest.model_dump(mode="json", exclude_defaults=False)
    manifest["spec"]["input"] = dict(resolved)
    if run.trainer:
        manifest["spec"]["trainer"] = run.trainer
    header = [
        f"# trainops snapshot of {job.name} revision {revision}",
        f"# source commit: {run.source_commit or '(working tree)'}",
        *([f"# source tree: {tree}"] if tree else []),
        f"# source file: {job.file}",
        f"# trainer: {run.trainer or '(local command)'}",
        f"# schema: {SNAPSHOT_SCHEMA}",
        f"# input hash: {run.input_hash}",
    ]
    if job.member is not None:  # what `trace` names a sweep's member by (DESIGN §21)
        header.append(member_line(job.member))
    body = yaml.safe_dump(manifest, sort_keys=False, allow_unicode=True)
    return "\n".join(header) + "\n" + body
