"""What validating a repository produces (`Validation`): the valid jobs by name, every problem,
the names whose manifest does not validate (their runs are left alone) and whether every file
parsed (only then may a job missing from git be pruned), and the sweep sets (DESIGN §21) whose
members are among the jobs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from trainops.errors import Problem
from trainops.manifest import Config, Job, SweepSet

InputChecker = Callable[[Job], list[Problem]]


@dataclass
class Validation:
    config: Config
    jobs: dict[str, Job] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    invalid: set[str] = field(default_factory=set)  # job names whose manifest does not validate
    complete: bool = True  # every file parsed and every document has a readable name
    files: list[str] = field(default_factory=list)
    # Each manifest with a spec.matrix, by set name; its valid members are in `jobs`. A set whose
    # manifest does not validate is named in `invalid` (so are its recorded members: set_of).
    sets: dict[str, SweepSet] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems
