"""Validation of a repository's manifests: schema, semantics, and (with a lock) training inputs.

Produces every problem of every file — a bad file never hides the problems of another — plus
what the planner needs to stay safe: which job names are invalid (their runs are left alone) and
whether every file parsed (only then may a job missing from git be pruned).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from trainops import wrongtype
from trainops.errors import Problem
from trainops.manifest import (
    API_VERSION,
    HF_FLAVORS,
    KIND,
    PROVIDERS,
    Config,
    HuggingFaceSpec,
    Job,
    LocalSpec,
    RaySpec,
    ReplicateSpec,
    SageMakerSpec,
    TrainingJob,
    flavor_problem,
    output_refs,
)
from trainops.repo import CONFIG_FILE, Source, linked_problem, resolve_inside, select
from trainops.yamlsource import Document, load_bytes

# Output names a provider fixes (DESIGN §2); providers absent here name outputs at run time.
FIXED_OUTPUTS = {
    "replicate": ("weights", "version"),
    "huggingface": ("weights",),
    "sagemaker": ("weights",),  # ModelArtifacts.S3ModelArtifacts
}

InputChecker = Callable[[Job], list[Problem]]


@dataclass
class Validation:
    config: Config
    jobs: dict[str, Job] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    invalid: set[str] = field(default_factory=set)  # job names whose manifest does not validate
    complete: bool = True  # every file parsed and every document has a readable name
    files: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def load_config(source: Source) -> tuple[Config, list[Problem]]:
    linked = linked_problem(source, CONFIG_FILE)
    if linked is not None:
        return Config(), [linked]
    raw = source.read(CONFIG_FILE)
    if raw is None:
        return Config(), []
    docs, problems = load_bytes(raw, CONFIG_FILE)
    if problems:
        return Config(), problems
    if not docs:
        return Config(), []
    doc = docs[0]
    if doc.secrets:
        return Config(), list(doc.secrets)
    if len(docs) == 1 and doc.data is None:
        return Config(), []  # `---` or `~` alone: every field has its default, as with no file
    if len(docs) > 1:
        return Config(), [doc.problem((), f"{CONFIG_FILE} holds one document, not {len(docs)}")]
    if not isinstance(doc.data, dict):
        return Config(), [doc.problem((), f"{CONFIG_FILE} must be a mapping")]
    try:
        config = Config.model_validate(doc.data)
    except ValidationError as exc:
        return Config(), _pydantic_problems(exc, doc, Config)
    runs_dir = config.providers.local.runs_dir
    # As the local provider checks again before a run writes there (links resolved on disk).
    if resolve_inside(source, runs_dir) is None:
        return Config(), [
            doc.problem(
                ("providers", "local", "runs_dir"),
                f"runs_dir {runs_dir!r} leads outside the repository through a symlink",
                "runs live inside the repository: remove the link or choose another folder",
            )
        ]
    return config, []


def validate_source(
    source: Source,
    check_input: InputChecker | None = None,
    on_config: Callable[[Config], None] | None = None,
) -> Validation:
    """Validate every manifest the config selects. Never raises for user error. `on_config`
    is called with a valid config before the manifests are read (to start work that needs
    only the config, such as reading the state branch)."""
    config, problems = load_config(source)
    result = Validation(config=config, problems=problems)
    if problems:
        result.complete = False
        return result
    if on_config is not None:
        on_config(config)
    selection = select(source, config.jobs)
    result.files = selection.files
    if selection.links:  # never followed: what they stand for is unknown, so nothing is pruned
        result.complete = False
        result.problems.extend(selection.link_problems())
    contents = source.read_many(result.files)
    by_name: dict[str, list[Job]] = {}
    for path in result.files:
        raw = contents[path]
        if raw is None:
            continue
        docs, file_problems = load_bytes(raw, path)
        if file_problems:
            result.complete = False
            result.problems.extend(file_problems)
        for doc in docs:
            job, doc_problems = _validate_document(doc)
            result.problems.extend(doc_problems)
            if job is not None:
                by_name.setdefault(job.name, []).append(job)
            else:
                name = _name_of(doc)
                if name:
                    result.invalid.add(name)
                else:
                    result.complete = False
    _check_names(by_name, result)
    _check_references(result)
    _check_workdirs(source, result)
    _check_ray_hardware(config, result)
    _check_hf_flavors(result)
    _check_sagemaker_input(result)
    _check_promote(result)
    if check_input is not None:
        for name, job in sorted(result.jobs.items()):
            if name in result.invalid:
                continue  # refused already (its workdir may lead out): no second word, no look
            found = check_input(job)
            if found:
                result.problems.extend(found)
                result.invalid.add(name)
    for name in result.invalid:
        result.jobs.pop(name, None)
    result.problems = sorted(dict.fromkeys(result.problems))  # each problem is reported once
    return result


def _name_of(doc: Document) -> str:
    data = doc.data
    if isinstance(data, dict) and isinstance(data.get("metadata"), dict):
        name = data["metadata"].get("name")
        if isinstance(name, str):
            return name
    return ""


def _validate_document(doc: Document) -> tuple[Job | None, list[Problem]]:
    data = doc.data
    if doc.secrets:
        return None, list(doc.secrets)
    if data is None:
        # Never skipped in silence: an emptied document would read as a job deleted (pruned).
        return None, [
            doc.problem(
                (),
                f"document {doc.index + 1} of this file is empty (null)",
                "remove it (and the --- before it), or write the manifest it was meant to hold",
            )
        ]
    if not isinstance(data, dict):
        return None, [
            doc.problem((), "a manifest must be a mapping with apiVersion, kind, metadata and spec")
        ]
    api, kind = data.get("apiVersion"), data.get("kind")
    if api is not None and api != API_VERSION:
        return None, [
            doc.problem(
                ("apiVersion",),
                f"unknown apiVersion {api!r}",
                f"this trainops reads apiVersion: {API_VERSION}",
            )
        ]
    if kind is not None and kind != KIND:
        return None, [doc.problem(("kind",), f"unknown kind {kind!r}", f"expected kind: {KIND}")]
    try:
        manifest = TrainingJob.model_validate(data)
    except ValidationError as exc:
        return None, _pydantic_problems(exc, doc, TrainingJob)
    # The model holds what the document said: the parsed data is not kept beside it for every
    # job of the repository (a problem found later is still located, see Document.lean).
    return Job(manifest, doc.lean()), []


def _pydantic_problems(
    exc: ValidationError, doc: Document, model: type[BaseModel]
) -> list[Problem]:
    problems = []
    for err in exc.errors(include_url=False):
        loc = _user_loc(err["loc"])
        kind = err["type"]
        where = ".".join(str(p) for p in loc) or "document"
        if kind == "extra_forbidden":
            key = loc[-1]
            allowed = _keys_at(model, doc.data, loc[:-1])
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = (
                f"did you mean {close[0]!r}?"
                if close
                else (f"allowed keys here: {', '.join(allowed)}" if allowed else "")
            )
            problems.append(doc.problem(loc, f"unknown key {where!r}", hint))
        elif kind == "missing":
            problems.append(doc.problem(loc[:-1], f"missing required key {where!r}"))
        elif kind == "union_tag_invalid":
            tag = err.get("ctx", {}).get("tag")
            close = difflib.get_close_matches(str(tag), PROVIDERS, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"providers: {', '.join(PROVIDERS)}"
            problems.append(doc.problem((*loc, "provider"), f"unknown provider {tag!r}", hint))
        elif kind == "union_tag_not_found":
            problems.append(
                doc.problem(
                    loc,
                    f"missing required key '{where}.provider'",
                    f"providers: {', '.join(PROVIDERS)}",
                )
            )
        elif (wrong := wrongtype.message(kind, err.get("input"))) is not None:
            problems.append(doc.problem(loc, f"{where}: {wrong}", _hint_for(loc)))
        else:
            message = err["msg"].removeprefix("Value error, ")
            problems.append(doc.problem(loc, f"{where}: {message}", _hint_for(loc)))
    return problems


def _user_loc(loc: tuple[Any, ...]) -> tuple[str | int, ...]:
    # pydantic inserts the discriminator's tag ('spec', 'local', ...): the user never wrote it.
    if len(loc) >= 2 and loc[0] == "spec" and loc[1] in PROVIDERS:
        loc = (loc[0], *loc[2:])
    return tuple(p for p in loc if isinstance(p, (str, int)))


def _hint_for(loc: tuple[str | int, ...]) -> str:
    last = loc[-1] if loc else ""
    if last == "name":
        return "a DNS label: lowercase letters, digits and '-', at most 63 characters"
    if last in ("max_duration", "duration"):
        return "write durations like 90m, 2h or 1h30m"
    if last == "trainer":
        return "owner/name, optionally :version (the lock file can pin it)"
    if last == "repo":
        return (
            "a Hub repo id: namespace/name of letters, digits, '-', '_' and '.', each at most "
            "96 characters, not starting or ending with '-' or '.', no '--' or '..', no .git"
        )
    if last == "uri":
        return (
            "s3://bucket/prefix, the bucket 3-63 lowercase letters, digits, '.' and '-', "
            "not an IP address"
        )
    return ""


def _keys_at(model: type[BaseModel], data: Any, loc: tuple[str | int, ...]) -> list[str]:
    """The keys the schema allows at `loc`, for did-you-mean hints."""
    current: Any = model
    value = data
    for part in loc:
        value = (
            value.get(part)
            if isinstance(value, dict)
            else (value[part] if isinstance(value, list) and isinstance(part, int) else None)
        )
        if isinstance(part, int):
            continue
        fields = getattr(current, "model_fields", None)
        if fields is None or part not in fields:
            return []
        current = _model_of(fields[part].annotation, value)
    fields = getattr(current, "model_fields", None)
    return sorted(fields) if fields else []


def _model_of(annotation: Any, value: Any) -> Any:
    import typing

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_of(arg, value)
        if found is not None:
            specs = (LocalSpec, ReplicateSpec, HuggingFaceSpec, RaySpec, SageMakerSpec)
            if found in specs and isinstance(value, dict):
                return {
                    "local": LocalSpec,
                    "huggingface": HuggingFaceSpec,
                    "ray": RaySpec,
                    "sagemaker": SageMakerSpec,
                }.get(str(value.get("provider")), ReplicateSpec)
            return found
    return None


def _check_names(by_name: Mapping[str, list[Job]], result: Validation) -> None:
    for name, jobs in by_name.items():
        if len(jobs) == 1:
            result.jobs[name] = jobs[0]
            continue
        result.invalid.add(name)
        places = ", ".join(f"{j.file}:{j.doc.locate(('metadata', 'name'))[0]}" for j in jobs)
        for job in jobs:
            result.problems.append(
                job.doc.problem(
                    ("metadata", "name"),
                    f"job name {name!r} is used by {len(jobs)} manifests",
                    f"names are unique in the repository: {places}",
                )
            )


def _check_references(result: Validation) -> None:
    names = set(result.jobs) | result.invalid
    for job in result.jobs.values():
        spec = job.spec
        for i, upstream in enumerate(spec.after):
            if upstream not in names:
                result.problems.append(
                    job.doc.problem(
                        ("spec", "after", i),
                        f"after: no job named {upstream!r}",
                        _did_you_mean(upstream, names),
                    )
                )
                result.invalid.add(job.name)
            elif upstream == job.name:
                result.problems.append(
                    job.doc.problem(("spec", "after", i), "a job cannot wait for itself")
                )
                result.invalid.add(job.name)
        for key_path, ref_job, ref_key in _refs_with_paths(spec.input, ("spec", "input")):
            other = result.jobs.get(ref_job)
            if ref_job not in names:
                result.problems.append(
                    job.doc.problem(
                        key_path,
                        f"output reference to unknown job {ref_job!r}",
                        _did_you_mean(ref_job, names),
                    )
                )
                result.invalid.add(job.name)
            elif ref_job == job.name:
                result.problems.append(job.doc.problem(key_path, "a job cannot use its own output"))
                result.invalid.add(job.name)
            elif other is not None and ref_key not in FIXED_OUTPUTS.get(
                other.spec.provider, (ref_key,)
            ):
                fixed = FIXED_OUTPUTS[other.spec.provider]
                result.problems.append(
                    job.doc.problem(
                        key_path,
                        f"job {ref_job!r} ({other.spec.provider}) has no output {ref_key!r}",
                        f"its outputs are: {', '.join(fixed)}",
                    )
                )
                result.invalid.add(job.name)
    _check_cycles(result)


def _check_workdirs(source: Source, result: Validation) -> None:
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


def _check_ray_hardware(config: Config, result: Validation) -> None:
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


def _check_hf_flavors(result: Validation) -> None:
    """A Hugging Face job's `hardware` must be a flavor the service runs: a typo is a problem at
    its position, not a 400 at submit after the merge."""
    for job in list(result.jobs.values()):
        spec = job.spec
        if isinstance(spec, HuggingFaceSpec) and spec.hardware not in (None, *HF_FLAVORS):
            result.problems.append(flavor_problem(job))
            result.invalid.add(job.name)


def _check_sagemaker_input(result: Validation) -> None:
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


def _check_promote(result: Validation) -> None:
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


def _refs_with_paths(value: Any, path: tuple[str | int, ...]) -> list[tuple[Any, str, str]]:
    found: list[tuple[Any, str, str]] = []
    if isinstance(value, str):
        found.extend((path, j, k) for j, k in output_refs(value))
    elif isinstance(value, dict):
        for key, item in value.items():
            found.extend(_refs_with_paths(item, (*path, key)))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found.extend(_refs_with_paths(item, (*path, i)))
    return found


def _check_cycles(result: Validation) -> None:
    graph = {
        name: [u for u in job.upstream() if u in result.jobs and u != name]
        for name, job in result.jobs.items()
    }
    state: dict[str, int] = {}  # 1 visiting, 2 done
    for start in sorted(graph):
        if state.get(start):
            continue
        stack: list[tuple[str, int]] = [(start, 0)]
        trail: list[str] = []
        while stack:
            node, i = stack.pop()
            if i == 0:
                state[node] = 1
                trail.append(node)
            edges = graph[node]
            if i < len(edges):
                stack.append((node, i + 1))
                nxt = edges[i]
                if state.get(nxt) == 1:
                    cycle = [*trail[trail.index(nxt) :], nxt]
                    for name in cycle[:-1]:
                        job = result.jobs[name]
                        result.problems.append(
                            job.doc.problem(
                                ("spec", "after"),
                                f"dependency cycle: {' -> '.join(cycle)}",
                                "remove one of these `after` entries or output references",
                            )
                        )
                        result.invalid.add(name)
                elif not state.get(nxt):
                    stack.append((nxt, 0))
            else:
                state[node] = 2
                trail.pop()


def _did_you_mean(name: str, names: set[str]) -> str:
    close = difflib.get_close_matches(name, sorted(names), n=1)
    return f"did you mean {close[0]!r}?" if close else ""
