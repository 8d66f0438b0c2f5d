"""The checks across jobs (DESIGN §2): names unique in the repository, `after` and output
references naming jobs (and outputs) that exist, and no dependency cycle. A sweep set (DESIGN
§21) is a name too: `after` it waits for all its members, its output is its winner's (so it
needs a `select`), and none of its members may wait for it."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from trainops.errors import Problem
from trainops.manifest import Job, SweepSet, output_refs
from trainops.validate.result import Validation

# Output names a provider fixes (DESIGN §2); providers absent here name outputs at run time.
FIXED_OUTPUTS = {
    "replicate": ("weights", "version"),
    "huggingface": ("weights",),
    "sagemaker": ("weights",),  # ModelArtifacts.S3ModelArtifacts
}


def check_names(by_name: Mapping[str, list[Job]], result: Validation) -> None:
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


def gather_sets(
    sets: Mapping[str, list[tuple[SweepSet, list[Job]]]],
    by_name: dict[str, list[Job]],
    result: Validation,
) -> None:
    """A set's name is unique among sets and jobs (`${{ jobs.<set>.output.KEY }}` names it);
    the members of a set whose name is taken are not read (nor pruned: the set is invalid)."""
    for name, found in sets.items():
        jobs = by_name.get(name, [])
        if len(found) == 1 and not jobs:
            sweep_set, members = found[0]
            result.sets[name] = sweep_set
            for member in members:
                by_name.setdefault(member.name, []).append(member)
            continue
        result.invalid.add(name)
        places = [(s.doc, s.file) for s, _ in found] + [(j.doc, j.file) for j in jobs]
        where = ", ".join(
            f"{file}:{doc.locate(('metadata', 'name'))[0]}" for doc, file in places if doc
        )
        for doc, _file in places:
            if doc is not None:
                result.problems.append(
                    doc.problem(
                        ("metadata", "name"),
                        f"name {name!r} is used by {len(places)} manifests (a sweep's name "
                        "is a job name too)",
                        f"names are unique in the repository: {where}",
                    )
                )


# Providers whose runs report metrics while they run (Observation.progress): only their members
# can be stopped early by a set's stop_when (DESIGN §21); Ray only with a shared output folder.
REPORTS_WHILE_RUNNING = ("local", "ray")


def check_winners(result: Validation) -> None:
    """DESIGN §21: a set's `promote` and `stop_when` need its `select` (the winner, and which
    way is better), and `stop_when` needs a provider that reports metrics while a run runs."""
    for name, sweep_set in sorted(result.sets.items()):
        select, stop = sweep_set.sweep.select, sweep_set.sweep.stop_when
        provider = next(
            (result.jobs[m].spec.provider for m in sweep_set.members if m in result.jobs), ""
        )
        problems = []
        if sweep_set.promote is not None and select is None:
            problems.append(
                sweep_set.problem(
                    ("spec", "promote"),
                    "a set promotes its winner, and this one has no spec.sweep.select",
                    "add spec.sweep.select: {metric: NAME, goal: minimize | maximize}",
                )
            )
        if stop is not None and select is None:
            problems.append(
                sweep_set.problem(
                    ("spec", "sweep", "stop_when"),
                    "stop_when compares members with the best one: it needs spec.sweep.select",
                    "add spec.sweep.select: {metric: NAME, goal: minimize | maximize}",
                )
            )
        elif stop is not None and provider and provider not in REPORTS_WHILE_RUNNING:
            problems.append(
                sweep_set.problem(
                    ("spec", "sweep", "stop_when"),
                    f"the {provider} provider does not report metrics while a run runs: "
                    "stop_when could never stop a member",
                    "remove stop_when (only local and ray runs report metrics.json as they go)",
                )
            )
        elif stop is not None and provider == "ray" and (why := _ray_unreported(result)):
            problems.append(
                sweep_set.problem(
                    ("spec", "sweep", "stop_when"),
                    f"{why}: stop_when could never stop a member",
                    "remove stop_when, or set providers.ray.output_uri in trainops.yaml to an "
                    "absolute path the cluster's nodes and trainops share (docs/sweeps.md)",
                )
            )
        if problems:
            result.problems.extend(problems)
            result.invalid.update({name, *sweep_set.members})
            del result.sets[name]
            for member in sweep_set.members:
                result.jobs.pop(member, None)


def _ray_unreported(result: Validation) -> str:
    """Why Ray runs report no metrics while they run ("" when they do): the entrypoint keeps
    metrics.json in a shared output folder as it changes; S3 outputs arrive when the run ends
    (reading each running run's object every pass is a request per member per pass)."""
    output_uri = result.config.providers.ray.output_uri
    if not output_uri:
        return "Ray runs report metrics only through providers.ray.output_uri, which is not set"
    if output_uri.startswith("s3://"):
        return (
            f"Ray runs whose outputs go to S3 ({output_uri}) report no metrics while they "
            "run, only when they end"
        )
    return ""


def check_references(result: Validation) -> None:
    check_winners(result)
    names = set(result.jobs) | result.invalid | set(result.sets)
    waits_for: dict[str, list[str]] = {}  # Job.upstream() of each, from the one walk of its input
    for job in result.jobs.values():
        spec = job.spec
        refs = _refs_with_paths(spec.input, ("spec", "input"))
        ups = waits_for[job.name] = list(spec.after)
        ups.extend(dict.fromkeys(r for _p, r, _k in refs if r not in ups))
        for i, upstream in enumerate(spec.after):
            if job.member is not None and upstream == job.member.set:
                _once(
                    result,
                    job,
                    job.doc.problem(("spec", "after", i), "a member cannot wait for its own set"),
                )
            elif upstream not in names:
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
        for key_path, ref_job, ref_key in refs:
            other = result.jobs.get(ref_job)
            sweep_set = result.sets.get(ref_job)
            if sweep_set is not None:
                # DESIGN §21: a set's output is its winner's: it needs a select, and a member
                # cannot read its own set's
                other = next((result.jobs[m] for m in sweep_set.members if m in result.jobs), None)
            if sweep_set is not None and job.member is not None and job.member.set == ref_job:
                _once(
                    result,
                    job,
                    job.doc.problem(key_path, "a member cannot use its own set's output"),
                )
            elif sweep_set is not None and sweep_set.sweep.select is None:
                _once(
                    result,
                    job,
                    job.doc.problem(
                        key_path,
                        f"set {ref_job!r} has no winner to take an output from",
                        f"give {ref_job} a spec.sweep.select (metric and goal): its output is "
                        "the winner's",
                    ),
                )
            elif ref_job not in names:
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
    _check_cycles(result, waits_for)


def _once(result: Validation, job: Job, problem: Problem) -> None:
    """A problem of `job`, said once however many members of its set share the template."""
    result.invalid.add(job.name)
    if job.member is None or problem not in result.problems:
        result.problems.append(problem)


def _refs_with_paths(
    value: Any, path: tuple[str | int, ...], found: list[tuple[Any, str, str]] | None = None
) -> list[tuple[Any, str, str]]:
    """(path, job, key) of every output reference in `value`; a path is built only for a
    container, or for a value holding a reference (most hold none)."""
    found = [] if found is None else found
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        found.extend((path, j, k) for j, k in output_refs(value))
        return found
    for key, item in items:
        if isinstance(item, (dict, list)):
            _refs_with_paths(item, (*path, key), found)
        elif isinstance(item, str) and "${{" in item:
            found.extend(((*path, key), j, k) for j, k in output_refs(item))
    return found


def _check_cycles(result: Validation, waits_for: Mapping[str, list[str]]) -> None:
    # A set stands for its members (DESIGN §21): a job after a set waits for every member.
    members = {name: list(s.members) for name, s in result.sets.items()}
    graph = {
        name: [m for u in ups for m in members.get(u, [u]) if m in result.jobs and m != name]
        for name, ups in waits_for.items()
    }
    state: dict[str, int] = {}  # 1 visiting, 2 done
    for start in sorted(graph):
        if state.get(start) or not graph[start]:
            continue  # a job that waits for none is in no cycle: reached, if at all, from one
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
