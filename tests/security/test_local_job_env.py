"""A local job's environment (DESIGN §13: jobs get no credentials by default): the command sees a
minimal base, its `TRAINOPS_*` variables and exactly the names its manifest lists in `spec.env`,
never the credentials trainops itself holds (HF, AWS, GitHub, the configured Replicate token).
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.workspace import UserRepo, config, explain
from trainops.jobenv import BASE

DUMP_ENV = "import json, os; json.dump(dict(os.environ), open('{out}', 'w'))"
SECRETS = {
    "HF_TOKEN": "hf_FAKEfakeFAKEfakeFAKEfake01",
    "AWS_ACCESS_KEY_ID": "AKIAFAKEFAKEFAKEFAKE",
    "AWS_SECRET_ACCESS_KEY": "fake-aws-secret-0123456789",
    "GITHUB_TOKEN": "ghp_FAKEfakeFAKEfakeFAKEfake0123456789",
    "MY_PROD_REPLICATE": "r8_FAKEfakeFAKEfakeFAKEfake0123456789",
    "UNLISTED_SETTING": "anything",
}


def dumping_job(out: Path, env: list[str]) -> str:
    return json.dumps(
        {
            "apiVersion": "trainops/v1",
            "kind": "TrainingJob",
            "metadata": {"name": "envdump"},
            "spec": {
                "provider": "local",
                "command": ["python", "-c", DUMP_ENV.format(out=out)],
                "workdir": ".",
                "env": env,
            },
        }
    )


def test_a_job_gets_the_base_and_only_the_names_it_lists(tmp_path: Path) -> None:
    out = tmp_path / "env.json"
    repo = UserRepo.create(
        tmp_path,
        {"envdump": dumping_job(out, ["WANDB_MODE", "HF_TOKEN", "NOT_SET_ANYWHERE"])},
        cfg=config(providers={"replicate": {"token_env": "MY_PROD_REPLICATE"}}),
    )
    try:
        result = repo.trainops(
            "apply", "--wait", "--timeout", "30", env={**SECRETS, "WANDB_MODE": "offline"}
        )
        assert result.returncode == 0, explain(result)
        seen = json.loads(out.read_text())
    finally:
        repo.cleanup()

    assert seen["WANDB_MODE"] == "offline"
    assert seen["HF_TOKEN"] == SECRETS["HF_TOKEN"]  # listed: reviewed in the PR
    unlisted = {k for k in SECRETS if k != "HF_TOKEN"} & set(seen)
    assert not unlisted, f"inherited without being listed: {sorted(unlisted)}"
    assert "NOT_SET_ANYWHERE" not in seen
    extra = {
        k
        for k in seen
        if k not in BASE and not k.startswith(("LC_", "TRAINOPS_")) and k != "PYTHONUNBUFFERED"
    }
    assert extra == {"WANDB_MODE", "HF_TOKEN"}, extra
    (run_id,) = repo.run_ids()
    assert seen["TRAINOPS_RUN_ID"] == run_id
    assert seen["TRAINOPS_OUTPUT_DIR"] == str(repo.run_dir(run_id) / "outputs")
    assert "PATH" in seen and "HOME" in seen
    # Names reach the run's files, values never do.
    meta = (repo.record_dir(run_id) / "meta.json").read_text()
    assert all(value not in meta for value in SECRETS.values())


def test_spec_env_takes_names_only(tmp_path: Path) -> None:
    repo = UserRepo.create(
        tmp_path,
        {
            "bad": dumping_job(tmp_path / "x", ["HF_TOKEN=hf_abc"]).replace("envdump", "bad"),
            "own": dumping_job(tmp_path / "y", ["TRAINOPS_RUN_ID"]).replace("envdump", "own"),
        },
    )
    result = repo.trainops("validate")
    assert result.returncode == 1, explain(result)
    assert "'HF_TOKEN=hf_abc' is not an environment variable name" in result.stderr + result.stdout
    assert "TRAINOPS_RUN_ID is set by trainops" in result.stderr + result.stdout


def test_a_runs_log_is_masked_for_the_names_it_was_given_after_its_manifest_drops_them(
    tmp_path: Path,
) -> None:
    """The names a run got are kept with it: once a later commit drops them from `spec.env` (or
    removes the job), its log still never prints their values."""
    printing = json.loads(dumping_job(tmp_path / "unused", ["DB_PASSPHRASE"]))
    printing["spec"]["command"] = ["python", "-c", "import os; print(os.environ['DB_PASSPHRASE'])"]
    repo = UserRepo.create(tmp_path, {"envdump": json.dumps(printing)})
    env = {"DB_PASSPHRASE": "correct-horse-battery"}
    try:
        result = repo.trainops("apply", "--wait", "--timeout", "30", env=env)
        assert result.returncode == 0, explain(result)
        shown = repo.trainops("logs", "envdump", env=env)
        assert shown.returncode == 0 and "***" in shown.stdout, explain(shown)

        printing["spec"]["env"] = []
        repo.write_job("envdump", json.dumps(printing))
        repo.commit("no longer passes DB_PASSPHRASE")
        for args in (["logs", "envdump"], ["logs", "envdump", "--follow"]):
            shown = repo.trainops(*args, env=env)
            assert shown.returncode == 0, explain(shown)
            assert env["DB_PASSPHRASE"] not in shown.stdout + shown.stderr, explain(shown)
        repo.remove_job("envdump")
        repo.commit("removed")
        shown = repo.trainops("logs", "envdump", env=env)
        assert env["DB_PASSPHRASE"] not in shown.stdout + shown.stderr, explain(shown)
    finally:
        repo.cleanup()


def test_spec_env_cannot_pass_the_workflows_own_credentials(tmp_path: Path) -> None:
    """The workflow's GitHub token can push the state branch (the one writer its protection
    allows), the Actions runtime and OIDC tokens act as the workflow: a manifest that lists one
    is an error at its line, and no run starts."""
    out = tmp_path / "env.json"
    for name in ("GITHUB_TOKEN", "GH_TOKEN", "ACTIONS_ID_TOKEN_REQUEST_TOKEN", "actions_runtime_x"):
        repo = UserRepo.create(tmp_path / name, {"envdump": dumping_job(out, ["HF_TOKEN", name])})
        try:
            result = repo.trainops("validate")
            assert result.returncode == 1, explain(result)
            assert f"{name} is the workflow's own credential" in result.stdout + result.stderr
            applied = repo.trainops("apply", "--wait", "--timeout", "30", env=SECRETS)
            assert applied.returncode == 1, explain(applied)
            assert not out.exists(), "the job ran"
        finally:
            repo.cleanup()
