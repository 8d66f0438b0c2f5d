"""The Ray provider (DESIGN §10): a job's `command` on a Ray cluster, through the official
`ray.job_submission.JobSubmissionClient` (the `trainops[ray]` extra, imported on first use).

The cluster is `RAY_ADDRESS` in the environment, never a repository file. A package by noun:
`provider` (`RayProvider`, the protocol's face), `ids` (run ids and the ownership marks of
DESIGN §9, pure), `client` (the lazily imported client, its errors), `package` (runtime env:
the workdir zip and the shipped `trainops_rayjob` entrypoint), `submit`, `observe`, `cancel`,
`logs`. Only this package imports `ray`, and only inside functions.
"""

from trainops.providers.ray.ids import check_run, not_owned, submission_id
from trainops.providers.ray.package import WORKDIR_LIMIT
from trainops.providers.ray.provider import RayProvider

__all__ = ["WORKDIR_LIMIT", "RayProvider", "check_run", "not_owned", "submission_id"]
