"""The state branch read as input (DESIGN §9): every job's file validated and cross-checked.

Anyone who can push can write the branch. `parse_state` reads every `state/` file with the
schema (`trainops.state.schema`), then checks what no single file can prove: the job a file
claims is the one its path names, each run id belongs to that job's provider (`RunCheck`, given by
the caller), no job has two records, no run is claimed by two jobs. A file that fails becomes a
`JobState` with only a `problem`: the planner leaves that job alone, every other job proceeds;
`state_problems` names each such file.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from trainops.errors import Problem
from trainops.state.layout import job_of_path, legacy_state_path, state_path
from trainops.state.model import JobState, Run
from trainops.state.schema import StateFileError, read_state_file

__all__ = ["RunCheck", "parse_state", "state_problems"]

# (job, run) -> why the run cannot be that job's (empty when it can): each provider's rule for
# its run ids and outputs, given by the caller so this module stays free of providers.
RunCheck = Callable[[str, Run], str]


def parse_state(
    files: Mapping[str, str],
    check_run: RunCheck | None = None,
    unreadable: Mapping[str, str] | None = None,
) -> dict[str, JobState]:
    """Every `state/<job>.json`, validated (DESIGN §9: the state branch is input). A file that
    fails, or that the store could not read as text (`unreadable`: path -> why), is returned as
    a `JobState` with only a `problem`, keyed by its file name, so the caller reports it and
    leaves that job alone while every other job proceeds."""
    jobs: dict[str, JobState] = {}
    seen: dict[str, list[str]] = {}
    for path, why in sorted((unreadable or {}).items()):
        name = job_of_path(path)
        if name is not None:
            jobs[name] = JobState(name, problem=why, path=path)
            seen.setdefault(name, []).append(path)
    for path, text in sorted(files.items()):
        name = job_of_path(path)
        if name is None:
            continue
        seen.setdefault(name, []).append(path)
        try:
            state = read_state_file(text, path)
            if state.job != name:
                raise StateFileError(f"it claims job {state.job!r}, but its name says {name!r}")
            for i, run in enumerate(state.runs):
                why = check_run(name, run) if check_run is not None else ""
                if why:
                    raise StateFileError(f"runs[{i}]: {why}")
        except StateFileError as exc:
            state = JobState(name, problem=str(exc), path=path)
        if name not in jobs or not jobs[name].problem:  # a bad copy keeps its problem
            jobs[name] = state
    # trainops moves a legacy flat file when it writes the fanned-out one, never keeps both:
    # two records of one job mean a forged one, and which cannot be told.
    for name, paths in seen.items():
        if len(paths) > 1 and not jobs[name].problem:
            legacy = legacy_state_path(name)
            jobs[name] = JobState(
                name, problem=f"a second record of this job beside {state_path(name)}", path=legacy
            )
    _refuse_shared_run_ids(jobs)
    return jobs


def _refuse_shared_run_ids(jobs: dict[str, JobState]) -> None:
    """A run id belongs to one job: files that claim the same run are all left alone, since
    which one is forged cannot be told (acting on either could cancel another job's run)."""
    claims: dict[tuple[str, str], set[str]] = {}
    for name, state in jobs.items():
        for run in state.runs:
            if run.run_id:
                claims.setdefault((run.provider, run.run_id), set()).add(name)
    for (_provider, run_id), names in sorted(claims.items()):
        if len(names) > 1:
            for name in names:
                others = ", ".join(sorted(names - {name}))
                jobs[name] = JobState(
                    name, problem=f"run {run_id} is also claimed by {others}", path=jobs[name].path
                )


def state_problems(jobs: Mapping[str, JobState]) -> list[Problem]:
    """The state files that failed validation, as problems naming each file."""
    return [
        Problem(
            state.path or state_path(name),
            message=state.problem,
            hint="the state branch is input: fix or delete this file on the state branch; "
            "until then this job is left alone",
            job=name,
        )
        for name, state in sorted(jobs.items())
        if state.problem
    ]
