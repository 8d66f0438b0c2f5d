"""Validation of a repository's manifests: schema, semantics, and (with a lock) training inputs.

Produces every problem of every file — a bad file never hides the problems of another — plus
what the planner needs to stay safe: which job names are invalid (their runs are left alone) and
whether every file parsed (only then may a job missing from git be pruned).

| module | what it owns |
| --- | --- |
| `repository.py` | the walk: `load_config`, `validate_source` (files, documents, then the checks) |
| `document.py` | one document as a TrainingJob; pydantic errors as located problems |
| `graph.py` | across jobs: unique names, `after` and output references, cycles |
| `jobs.py` | one job beyond its model: workdir links, Ray hardware, flavors, SageMaker, promote |
| `result.py` | `Validation`, what a walk produces |
"""

from trainops.validate.repository import load_config, validate_source
from trainops.validate.result import InputChecker, Validation

__all__ = ["InputChecker", "Validation", "load_config", "validate_source"]
