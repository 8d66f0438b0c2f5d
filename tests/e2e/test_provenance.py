"""Provenance as a user meets it (DESIGN §19): a local job writes `metrics.json`; `status` and
the commit comment on its source commit show the metrics; `trace` on the delivered weights file
(by content) and on the run id name the same source commit and snapshot; `checkout` of the run
writes files whose sha256s match the delivery manifest. GitHub is the loopback emulator, S3 is
moto's server, git is a real repository with a bare remote.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.test_github_flow import GH_TOKEN, Actions
from tests.emulators.github import GitHubEmulator
from tests.emulators.s3 import MotoS3
from tests.support.reviewed import run_comments
from tests.support.workspace import UserRepo, explain, manifest
from trainops.state.layout import snapshot_path

TRAIN = """\
import json, os
out = os.environ["TRAINOPS_OUTPUT_DIR"]
os.makedirs(out, exist_ok=True)
with open(os.path.join(out, "weights.bin"), "w") as f:
    f.write("weights of " + os.environ["TRAINOPS_RUN_ID"])
with open(os.path.join(out, "metrics.json"), "w") as f:
    json.dump({"eval_loss": 0.21, "accuracy": 0.93, "note": "not a number", "nan": "NaN"}, f)
"""


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[UserRepo, Actions, MotoS3]]:
    with MotoS3() as s3, GitHubEmulator(token=GH_TOKEN) as gh:
        s3.client().create_bucket(Bucket="models")
        repo = UserRepo.create(tmp_path, {})
        repo.env.update(s3.env())
        repo.write("train_m.py", TRAIN)
        deliver = [{"s3": {"uri": "s3://models/m/"}}]
        repo.write_job("m", manifest("m", command=["python", "train_m.py"], deliver=deliver))
        repo.commit("m trains and reports metrics")
        yield repo, Actions(repo, gh, tmp_path), s3
        repo.cleanup()
        assert gh.errors == []


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_metrics_are_shown_and_a_delivered_file_traces_back_to_its_commit(
    world: tuple[UserRepo, Actions, MotoS3], tmp_path: Path
) -> None:
    repo, actions, s3 = world
    first = actions.apply(event="push")
    assert first.returncode == 0, explain(first)
    repo.wait_all_terminal()
    for _ in range(2):  # observe + deliver + report
        again = actions.apply()
        assert again.returncode == 0, explain(again)
    [run_id] = repo.run_ids()
    run = repo.state()["m"].runs[-1]
    source = run.source_commit
    assert dict(run.metrics) == {"accuracy": 0.93, "eval_loss": 0.21}

    status = repo.trainops("status", "--output", "json")
    assert status.returncode == 0, explain(status)
    [row] = json.loads(status.stdout)["jobs"]
    assert row["metrics"] == {"accuracy": 0.93, "eval_loss": 0.21}
    table = repo.trainops("status")
    assert "accuracy=0.93 eval_loss=0.21" in table.stdout
    [comment] = run_comments(actions.emu, source, pushed=[{"m"}])
    assert "**Metrics**" in comment["body"]
    assert "- `eval_loss`: `0.21`" in comment["body"]

    # The weights as a user downloads them from the delivery, traced by content.
    key = f"m/m/{run.revision}/weights.bin"
    weights = s3.client().get_object(Bucket="models", Key=key)["Body"].read()
    downloaded = tmp_path / "downloaded.bin"
    downloaded.write_bytes(weights)
    by_file = repo.trainops("trace", str(downloaded), "--output", "json")
    by_id = repo.trainops("trace", run_id, "--output", "json")
    assert by_file.returncode == by_id.returncode == 0, explain(by_file) + explain(by_id)
    [traced] = json.loads(by_file.stdout)["runs"]
    [named] = json.loads(by_id.stdout)["runs"]
    assert traced["matched"] == "file sha256 (delivery manifest)"
    for field in ("job", "run_id", "source_commit", "snapshot", "revision"):
        assert traced[field] == named[field]
    assert traced["source_commit"] == source != ""
    assert traced["snapshot"] == snapshot_path("m", run.revision)
    assert traced["metrics"] == {"accuracy": 0.93, "eval_loss": 0.21}
    assert traced["deliveries"] == {"s3:s3://models/m/": "done"}
    text = repo.trainops("trace", run_id)
    assert f"source_commit: {source}" in text.stdout

    out = tmp_path / "checkout"
    done = repo.trainops("checkout", run_id, "-o", str(out))
    assert done.returncode == 0, explain(done)
    delivered = json.loads(
        s3.client()
        .get_object(Bucket="models", Key=f"m/m/{run.revision}/trainops.json")["Body"]
        .read()
    )
    assert sorted(p.name for p in out.iterdir()) == ["metrics.json", "trainops.json", "weights.bin"]
    for name, entry in delivered["files"].items():
        assert sha256((out / name).read_bytes()) == entry["sha256"]
    assert (out / "weights.bin").read_bytes() == weights

    missing = repo.trainops("trace", "nothing-like-this")
    assert missing.returncode == 2 and "no recorded run matches" in missing.stderr
    assert "Traceback" not in missing.stderr
    actions.assert_no_secrets()
