"""The walk over a repository: `trainops.yaml` first (`load_config`), then every file its `jobs`
patterns select, each document through `trainops.validate.document`, then the checks across jobs
(`graph`), of each job (`jobs`) and, with a lock, of training inputs. A bad file never hides the
problems of another."""

from __future__ import annotations

from collections.abc import Callable

from pydantic import ValidationError

from trainops.errors import Problem
from trainops.jobglobs import select
from trainops.manifest import Config, Job, SweepSet
from trainops.repo import CONFIG_FILE, Source, linked_problem, resolve_inside
from trainops.validate.document import check_header, name_of, pydantic_problems, validate_document
from trainops.validate.graph import check_names, check_references, gather_sets
from trainops.validate.jobs import (
    check_hf_flavors,
    check_promote,
    check_ray_hardware,
    check_sagemaker_input,
    check_workdirs,
)
from trainops.validate.matrixrefs import stray_references
from trainops.validate.result import InputChecker, Validation
from trainops.validate.sweep import expand, is_set
from trainops.yamlsource import load_bytes


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
        return Config(), pydantic_problems(exc, doc, Config)
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
    sets: dict[str, list[tuple[SweepSet, list[Job]]]] = {}
    for path in result.files:
        raw = contents.pop(path)  # dropped once read: the decoded text is what a job keeps
        if raw is None:
            continue
        docs, file_problems = load_bytes(raw, path)
        if file_problems:
            result.complete = False
            result.problems.extend(file_problems)
        for doc in docs:
            header = check_header(doc)
            if not header and is_set(doc):
                members, sweep_set, set_problems = expand(doc)
                result.problems.extend(set_problems)
                if sweep_set is not None:
                    sets.setdefault(sweep_set.name, []).append((sweep_set, members))
                    result.invalid.update(set(sweep_set.members) - {m.name for m in members})
                elif name := name_of(doc):
                    result.invalid.add(name)  # and so are its recorded members (set_of)
                else:
                    result.complete = False
                continue
            stray = [] if header else stray_references(doc)
            job, doc_problems = (None, stray) if stray else validate_document(doc, header)
            result.problems.extend(doc_problems)
            if job is not None:
                by_name.setdefault(job.name, []).append(job)
            else:
                name = name_of(doc)
                if name:
                    result.invalid.add(name)
                else:
                    result.complete = False
    gather_sets(sets, by_name, result)
    check_names(by_name, result)
    check_references(result)
    check_workdirs(source, result)
    check_ray_hardware(config, result)
    check_hf_flavors(result)
    check_sagemaker_input(result)
    check_promote(result)
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
