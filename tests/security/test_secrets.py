"""Secrets never come out (DESIGN §13): one scrubber at every boundary trainops writes through.

A job that prints a credential has that text in its error; the error reaches the state branch,
the terminal (table, json, markdown) and GitHub only through `trainops.scrub`. The credential
grep of tests/support/credentials.py runs after each test here and fails it on any hit; these
tests make jobs leak on purpose and check the job really did print the value.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.credentials import FAKE_CREDENTIALS, FAKE_TOKEN_ENV, Recorder
from tests.support.workspace import UserRepo, config, explain, manifest
from trainops.scrub import CREDENTIAL_ENV, Scrubber

# Fails after printing, on stderr, a secret: the variable its input names (passed to it through
# spec.env), or else the content of the file its input names (a credential it got elsewhere).
# Its last stderr line becomes the run's error.
LEAKER = """\
import json, os, sys
params = json.load(open(os.environ["TRAINOPS_INPUT"]))
secret = os.environ[params["var"]] if "var" in params else open(params["leak"]).read()
print(params.get("pad", "") + "token is " + secret, file=sys.stderr, flush=True)
sys.exit(1)
"""


@pytest.fixture
def leaky(tmp_path: Path) -> Iterator[tuple[UserRepo, Path]]:
    repo = UserRepo.create(
        tmp_path, {}, cfg=config(providers={"replicate": {"token_env": "MY_PROD_REPLICATE"}})
    )
    repo.write("leak.py", LEAKER)
    yield repo, repo.signals / "secret"
    repo.cleanup()


@pytest.mark.parametrize("given", [True, False], ids=["passed-by-spec-env", "read-elsewhere"])
@pytest.mark.parametrize(
    ("var", "secret"),
    [
        ("HF_TOKEN", FAKE_CREDENTIALS["HF_TOKEN"]),
        ("AWS_SECRET_ACCESS_KEY", FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"]),
        ("MY_PROD_REPLICATE", FAKE_TOKEN_ENV),  # the configured token_env
    ],
    ids=["hf-token", "aws-secret", "configured-token-env"],
)
def test_a_job_printing_a_credential_leaves_it_nowhere(
    leaky: tuple[UserRepo, Path], var: str, secret: str, given: bool, credential_grep: Recorder
) -> None:
    repo, leak = leaky
    leak.write_text(secret)
    how = {"input": {"var": var}, "env": [var]} if given else {"input": {"leak": str(leak)}}
    repo.write_job("leaks", manifest("leaks", command=["python", "leak.py"], **how))
    repo.commit("a job that prints a secret")
    repo.apply_ok()
    repo.wait_all_terminal()
    repo.apply_ok()  # records the failure and its error on the state branch
    (run,) = repo.state()["leaks"].runs
    assert run.error == "exit code 1: token is ***"
    for output in ("table", "json", "markdown"):
        shown = repo.trainops("status", "-o", output)
        assert shown.returncode == 0 and "token is ***" in shown.stdout, explain(shown)
    logs = repo.trainops("logs", "leaks")
    assert "token is ***" in logs.stdout, explain(logs)
    assert credential_grep.secrets.get(secret)  # the grep after this test looks for it


def test_the_credential_grep_catches_a_leak(tmp_path: Path) -> None:
    recorder = Recorder()
    given = {"GITHUB_TOKEN": "a-real-looking-emulator-token", "TRAINOPS_SERVE_TOKEN": "page-t0ken"}
    recorder.credentials_for(tmp_path, given)
    recorder.output("all good", "posted with a-real-looking-emulator-token")
    recorder.output(f"and {FAKE_CREDENTIALS['HF_TOKEN']}", "Bearer page-t0ken")
    assert recorder.leaks() == [
        "output #1: GITHUB_TOKEN",
        "output #2: HF_TOKEN",
        "output #3: TRAINOPS_SERVE_TOKEN",
    ]


# serve's secrets (trainops.serve.app, trainops.serve.webhooks): the page token and the webhook
# signing secrets. None is faked for every run (see tests/support/credentials.py).
SERVE_SECRETS = {
    "TRAINOPS_SERVE_TOKEN": "serve-page-token-3c9e01",
    "TRAINOPS_GITHUB_WEBHOOK_SECRET": "github-hook-secret-77a2d4",
    "TRAINOPS_REPLICATE_WEBHOOK_SECRET": "whsec_" + "c2VydmVTZWNyZXRWYWx1ZQ" * 2,
}


def test_serve_secrets_are_named_credentials() -> None:
    from trainops.serve.app import GITHUB_SECRET_ENV, TOKEN_ENV

    assert {TOKEN_ENV, GITHUB_SECRET_ENV} | set(SERVE_SECRETS) <= set(CREDENTIAL_ENV)


@pytest.mark.parametrize("var", sorted(SERVE_SECRETS))
def test_a_serve_secret_a_job_prints_leaves_it_nowhere(
    leaky: tuple[UserRepo, Path], var: str, credential_grep: Recorder
) -> None:
    repo, leak = leaky
    secret = SERVE_SECRETS[var]
    leak.write_text(secret)  # the job reads it elsewhere: trainops passes it nothing
    env = {var: secret}  # what a `serve` host's environment holds
    job = manifest("leaks", input={"leak": str(leak)}, command=["python", "leak.py"])
    repo.write_job("leaks", job)
    repo.commit("a job that prints a serve secret")
    for _ in range(2):  # submit, then record the failure and its error on the state branch
        applied = repo.trainops("apply", env=env)
        assert applied.returncode == 0, explain(applied)
        repo.wait_all_terminal()
    (run,) = repo.state()["leaks"].runs
    assert run.error == "exit code 1: token is ***"
    for args in (
        ("status",),
        ("status", "-o", "json"),
        ("status", "-o", "markdown"),
        ("logs", "leaks"),
    ):
        shown = repo.trainops(*args, env=env)
        assert shown.returncode == 0 and "token is ***" in shown.stdout, explain(shown)
    assert credential_grep.secrets.get(secret) == var  # the grep after this test looks for it


def test_a_webhook_signing_secret_no_variable_holds_is_masked_by_its_shape() -> None:
    # serve may fetch Replicate's signing secret (GET /v1/webhooks/default/secret): no variable
    # holds that value, so only its `whsec_` shape can mask it
    fetched = SERVE_SECRETS["TRAINOPS_REPLICATE_WEBHOOK_SECRET"]
    assert Scrubber()(f"verifying with {fetched}.") == "verifying with ***."
    assert Scrubber()("whsec_short") == "whsec_short"  # too short to be one


def test_a_credential_cut_by_a_shortened_reason_is_still_masked(
    leaky: tuple[UserRepo, Path],
) -> None:
    repo, leak = leaky
    secret = FAKE_CREDENTIALS["HF_TOKEN"]
    leak.write_text(secret)
    # The plan's reason keeps 200 characters of the error: the secret straddles that cut.
    pad = "x" * (200 - len("exit code 1: token is ") - 8)
    job = manifest("leaks", input={"leak": str(leak), "pad": pad}, command=["python", "leak.py"])
    repo.write_job("leaks", job)
    repo.commit("a job that prints a secret at the end of a long line")
    repo.apply_ok()
    repo.wait_all_terminal()
    for _ in range(2):
        shown = repo.trainops("status", "-o", "json")
        assert shown.returncode == 0, explain(shown)
        assert secret[:8] not in shown.stdout and "token is ***" in shown.stdout
