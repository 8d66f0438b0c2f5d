"""The checks of one job at a time that its model cannot make alone: its workdir against the
repository's links, a Ray job's hardware against trainops.yaml's table, a Hugging Face flavor, a
SageMaker job's hyperparameters, and promote targets against where the job delivers (§19)."""

from __future__ import annotations

from trainops.manifest import (
    HF_FLAVORS,
    Config,
    HuggingFaceSpec,
    LocalSpec,
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
    alias takes the promoted run's outputs from where the job delivers them (DESIGN §19)."""
    for job in list(result.jobs.values()):
        spec = job.spec
        if spec.promote is None:
            continue
        hub_repos = {d.huggingface.repo for d in spec.deliver if d.huggingface is not None}
        if isinstance(spec, HuggingFaceSpec) and spec.output_repo:
            hub_repos.add(spec.output_repo)  # the job pushes there itself
        s3_uris = [d.s3.uri for d in spec.deliver if d.s3 is not None]
        for i, target in enumerate(spec.promote.to):
            where = ("spec", "promote", "to", i)
            message = hint = ""
            if target.huggingface is not None and target.huggingface.repo not in hub_repos:
                message = (
                    f"promote: the Hub repo {target.huggingface.repo} is not one this job "
                    "delivers to (or pushes to as its output_repo)"
                )
                hint = f"add {{huggingface: {{repo: {target.huggingface.repo}}}}} to spec.deliver"
            elif target.s3 is not None and not s3_uris:
                message = "promote: an s3 alias copies the run's S3 delivery, and this job has none"
                hint = "add an s3 target to spec.deliver"
            elif target.s3 is not None and _overlaps(target.s3.uri, s3_uris[0], job.name):
                message = (
                    f"promote: {target.s3.uri} overlaps where {s3_uris[0]} delivers each revision"
                )
                hint = "give the alias its own prefix, like s3://bucket/models/prod/"
            elif target.replicate is not None and spec.provider != "replicate":
                message = (
                    "promote: a Replicate deployment serves model versions that Replicate "
                    f"trainings produce; this job runs on {spec.provider}"
                )
                hint = "promote to a huggingface ref or an s3 prefix instead"
            if message:
                result.problems.append(job.doc.problem(where, message, hint))
                result.invalid.add(job.name)


def _overlaps(alias: str, delivery: str, job: str) -> bool:
    """The alias prefix is the delivery's prefix, or inside what it writes (`<uri>/<job>/`)."""

    def parts(uri: str) -> list[str]:
        return [p for p in uri.removeprefix("s3://").split("/") if p]

    a, d = parts(alias), parts(delivery)
    return a == d or a[: len(d) + 1] == [*d, job] or d[: len(a)] == a
