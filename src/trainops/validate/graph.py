"""The checks across jobs (DESIGN §2): names unique in the repository, `after` and output
references naming jobs (and outputs) that exist, and no dependency cycle."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from trainops.manifest import Job, output_refs
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


def check_references(result: Validation) -> None:
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
