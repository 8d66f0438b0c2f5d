"""The checks of one job at a time that its model cannot make alone: its workdir against the
repository's links, a Ray job's hardware against trainops.yaml's table, a Hugging Face flavor, a
SageMaker job's hyperparameters, and promote targets against where the job delivers (§19)."""

from __future__ import annotations

from trainops.manifest import (
    HF_FLAVORS,
    AnySpec,
    Config,
    HuggingFaceSpec,
    LocalSpec,
    Promote,
    RaySpec,
    SageMakerSpec,
    flavor_problem,
)
from trainops.repo import Source, resolve_inside
from trainops.validate.result import Validation


def check_workdirs(source: Source, result: Validation) -> None:
    """A local job runs in its workdir: it must be a folder of the repository, also once every
    link on the way is resolved (a link to `/` would run the command anywhere)."""
    for job in list(result.jobs.values()):
        spec = job.spec
        if not isinstance(spec, LocalSpec | RaySpec) or spec.workdir is None:
            continue
        parts = spec.workdir.replace("\\", "/").split("/")
        if spec.workdir.startswith("/") or ".." in parts:
            message, hint = (
                "workdir must stay inside the repository",
                "use a path relative to the repository root, without '..'",
            )
        elif resolve_inside(source, spec.workdir) is None:
            message, hint = (
                f"workdir {spec.workdir!r} leads outside the repository through a symlink",
                "use a real folder of the repository",
            )
        else:
            continue
        result.problems.append(job.doc.problem(("spec", "workdir"), message, hint))
        result.invalid.add(job.name)


def check_ray_hardware(config: Config, result: Validation) -> None:
    """A Ray job's `hardware` must be a name of the `providers.ray.hardware` table: it says what
    the entrypoint reserves on the cluster (a typo must not run on whatever is free)."""
    table = config.providers.ray.hardware
    for job in list(result.jobs.values()):
        spec = job.spec
        if not isinstance(spec, RaySpec) or spec.hardware is None or spec.hardware in table:
            continue
        known = ", ".join(sorted(table)) or "none yet"
        result.problems.append(
            job.doc.problem(
                ("spec", "hardware"),
                f"hardware {spec.hardware!r} is not in the Ray hardware table (known: {known})",
                "add it under providers.ray.hardware in trainops.yaml, e.g. "
                f"{spec.hardware}: {{num_gpus: 1, price_per_hour: 2.5}}",
            )
        )
        result.invalid.add(job.name)


def check_hf_flavors(result: Validation) -> None:
    """A Hugging Face job's `hardware` must be a flavor the service runs: a typo is a problem at
    its position, not a 400 at submit after the merge."""
    for job in list(result.jobs.values()):
        spec = job.spec
        if isinstance(spec, HuggingFaceSpec) and spec.hardware not in (None, *HF_FLAVORS):
            result.problems.append(flavor_problem(job))
            result.invalid.add(job.name)


def check_sagemaker_input(result: Validation) -> None:
    """A SageMaker job's input goes as `HyperParameters`, strings: a value whose string a trainer
    would read back as something else (the string "3" as the number 3) is refused here, at its
    position, as are more entries or longer values than the service takes."""
    from trainops import hyperparameters as _sagemaker_input

    for job in list(result.jobs.values()):
        spec = job.spec
        if not isinstance(spec, SageMakerSpec):
            continue
        for key, why in _sagemaker_input.problems(spec.input):
            where = ("spec", "input", key) if key else ("spec", "input")
            result.problems.append(
                job.doc.problem(
                    where,
                    f"input{'.' + key if key else ''}: {why}",
                    "SageMaker hyperparameters are strings; s3:// values become input channels",
                )
            )
            result.invalid.add(job.name)


def check_promote(result: Validation) -> None:
    """spec.promote's targets are checked like deliver's (the models), and against the job: an
    alias takes the promoted run's outputs from where the job delivers them (DESIGN §19). A
    set's promote (DESIGN §21) moves its aliases to whichever member wins, so it is checked
    against every member's deliver: a problem every member has is the set's, said once, and
    refuses the set; one only some members' values cause names the member and refuses it."""
    for job in list(result.jobs.values()):
        if job.spec.promote is None:
            continue
        for i, kind, detail in promote_problems(job.spec, job.spec.promote, job.name):
            message, hint = _said(kind, detail, "this job")
            result.problems.append(job.doc.problem(("spec", "promote", "to", i), message, hint))
            result.invalid.add(job.name)
    for name, sweep_set in sorted(result.sets.items()):
        if sweep_set.promote is None:
            continue
        found = {
            m: promote_problems(result.jobs[m].spec, sweep_set.promote, m)
            for m in sweep_set.members
            if m in result.jobs
        }
        every = set.intersection(*map(set, found.values())) if found else set()
        for i, kind, detail in sorted(every):
            message, hint = _said(kind, detail, "no member")
            result.problems.append(sweep_set.problem(("spec", "promote", "to", i), message, hint))
        if every:
            result.invalid.update({name, *sweep_set.members})
            del result.sets[name]
            for member in sweep_set.members:
                result.jobs.pop(member, None)
            continue
        for member, problems in found.items():
            for i, kind, detail in problems:
                message, hint = _said(kind, detail, "this member")
                result.problems.append(
                    sweep_set.problem(
                        ("spec", "promote", "to", i), f"member {member}: {message}", hint
                    )
                )
                result.invalid.add(member)


def promote_problems(spec: AnySpec, promote: Promote, job: str) -> list[tuple[int, str, str]]:
    """(index in promote.to, kind, detail) of each target `spec` cannot be promoted to: an
    alias needs the delivered output it moves to the run (`_said` words it)."""
    hub_repos = {d.huggingface.repo for d in spec.deliver if d.huggingface is not None}
    if isinstance(spec, HuggingFaceSpec) and spec.output_repo:
        hub_repos.add(spec.output_repo)  # the job pushes there itself
    s3_uris = [d.s3.uri for d in spec.deliver if d.s3 is not None]
    problems = []
    for i, target in enumerate(promote.to):
        if target.huggingface is not None and target.huggingface.repo not in hub_repos:
            problems.append((i, "hub", target.huggingface.repo))
        elif target.s3 is not None and not s3_uris:
            problems.append((i, "no-s3", ""))
        elif target.s3 is not None and _overlaps(target.s3.uri, s3_uris[0], job):
            problems.append((i, "overlap", f"{target.s3.uri} overlaps where {s3_uris[0]}"))
        elif target.replicate is not None and spec.provider != "replicate":
            problems.append((i, "replicate", spec.provider))
    return problems


def _said(kind: str, detail: str, who: str) -> tuple[str, str]:
    """The message and hint of a promote problem, of `who`: "this job", "this member" (one
    member of a set) or "no member" (every member of a set)."""
    if kind == "hub":
        one = "any member" if who == "no member" else who
        return (
            f"promote: the Hub repo {detail} is not one {one} delivers to (or pushes to as its "
            "output_repo)",
            f"add {{huggingface: {{repo: {detail}}}}} to spec.deliver",
        )
    if kind == "no-s3":
        has = "no member has one" if who == "no member" else f"{who} has none"
        return (
            f"promote: an s3 alias copies the run's S3 delivery, and {has}",
            "add an s3 target to spec.deliver",
        )
    if kind == "overlap":
        return (
            f"promote: {detail} delivers each revision",
            "give the alias its own prefix, like s3://bucket/models/prod/",
        )
    runs = "the members run" if who == "no member" else f"{who} runs"
    return (
        "promote: a Replicate deployment serves model versions that Replicate trainings "
        f"produce; {runs} on {detail}",
        "promote to a huggingface ref or an s3 prefix instead",
    )


def _overlaps(alias: str, delivery: str, job: str) -> bool:
    """The alias prefix is the delivery's prefix, or inside what it writes (`<uri>/<job>/`)."""

    def parts(uri: str) -> list[str]:
        return [p for p in uri.removeprefix("s3://").split("/") if p]

    a, d = parts(alias), parts(delivery)
    return a == d or a[: len(d) + 1] == [*d, job] or d[: len(a)] == a
