"""A Ray cluster with token authentication (Ray 2.60: `RAY_AUTH_MODE=token`, the token in
`RAY_AUTH_TOKEN`; shared/ref/README.md "Ray auth"): a real head started with it, once for this
module (a second head costs 10-20 s). Its job API answers 401 without a token and 403 with a
wrong one, and the SDK raises `ray.exceptions.AuthenticationError`
(`dashboard_sdk.SubmissionClient._do_request`), a `RayError`, neither a RuntimeError nor an
OSError: trainops escaped with "internal error". Now it is a provider error (exit 3, DESIGN
§12) that names what to set, starts nothing, and never prints the token.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.support.rayhead import TIMEOUT, RayHead
from tests.support.workspace import UserRepo, config, explain

# Its own head, on the worker of the session's head (tests/conftest.py's group for `ray_head`):
# Ray heads never start side by side on two workers of a 2-core machine.
pytestmark = [TIMEOUT, pytest.mark.xdist_group("session-ray_head")]

JOB = yaml.safe_dump(
    {
        "apiVersion": "trainops/v1",
        "kind": "TrainingJob",
        "metadata": {"name": "secured"},
        "spec": {"provider": "ray", "command": ["python", "-c", "pass"]},
    },
    sort_keys=False,
)


@pytest.fixture(scope="module")
def auth_head() -> Iterator[RayHead]:
    head = RayHead.start(auth_token="ray-auth-" + secrets.token_hex(16))
    yield head
    head.stop()


def cluster_jobs(head: RayHead) -> list[str]:
    """The ids of trainops' jobs on the cluster (asked with its token)."""
    from ray.job_submission import JobSubmissionClient

    client = JobSubmissionClient(head.address, headers=head.auth_headers())
    return [
        j.submission_id
        for j in client.list_jobs()
        if (j.submission_id or "").startswith("trainops-")
    ]


def repo_for(tmp_path: Path, head: RayHead) -> UserRepo:
    cfg = config(providers={"ray": {"output_uri": str(tmp_path / "outputs")}})
    repo = UserRepo.create(tmp_path, {"secured": JOB}, cfg=cfg)
    repo.env = {"RAY_ADDRESS": head.address}
    return repo


@pytest.mark.parametrize(
    "sent",
    [
        pytest.param({}, id="no token (401)"),
        pytest.param({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": "wrong-" + "x" * 24}, id="403"),
    ],
)
def test_a_refused_token_is_a_provider_error_naming_what_to_set(
    tmp_path: Path, auth_head: RayHead, sent: dict[str, str]
) -> None:
    repo = repo_for(tmp_path, auth_head)
    for _ in range(2):  # the submit, then the adoption of its recorded intent
        result = repo.trainops("apply", env=sent, timeout=120)
        assert result.returncode == 3, explain(result)
        out = result.stdout + result.stderr
        assert "internal error" not in out and "Traceback" not in out, explain(result)
        assert "RAY_AUTH_TOKEN" in out and "RAY_AUTH_MODE=token" in out, explain(result)
        assert sent.get("RAY_AUTH_TOKEN", "\0") not in out
    assert cluster_jobs(auth_head) == []  # nothing started


def test_with_the_clusters_token_apply_submits(tmp_path: Path, auth_head: RayHead) -> None:
    assert auth_head.auth_token is not None
    repo = repo_for(tmp_path, auth_head)
    token = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": auth_head.auth_token}
    result = repo.trainops("apply", env=token, timeout=120)
    assert result.returncode == 0, explain(result)
    assert auth_head.auth_token not in result.stdout + result.stderr
    (run,) = repo.state()["secured"].runs
    assert run.run_id in cluster_jobs(auth_head)
