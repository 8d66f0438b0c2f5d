"""Never twice with spec.data on Replicate (DESIGN §8, §18): `trainops apply` killed by SIGKILL at
each step boundary while it uploads and submits two jobs that train on one data folder, then
applied again until both trained. Counted at the emulator: exactly one upload per digest and one
training per job, whatever the kill. A kill after the upload and before the training is healed
by finding the file again by its digest; a kill after the training by adoption (its input holds
the file's URL, its intent the digest). An intent with no visible training waits out the
adoption grace (10 minutes of the CLI's real clock): the test ages those intents on the state
branch, as eleven minutes of waiting would.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from typing import Any

import pytest

from tests.e2e import test_replicate_cli as replicate_cli
from tests.e2e.test_data_replicate import data_job
from tests.emulators.replicate import CREATE_PATH, FILES_PATH
from tests.support import sweep
from tests.support.workspace import explain

emu, make = replicate_cli.emu, replicate_cli.make  # the fixtures: a user's repo on the emulator
CRASHPOINTS = [
    "after-observe",
    "before-push#1",
    "after-intents",
    "after-stage",  # the first job's package uploaded, its training not yet created
    "after-stage#2",
    "after-submit",  # one training created, its id not yet recorded
    "before-push#2",
    "after-save",
]
JOBS = ("portraits", "styles")


def age_intents(user: Any, seconds: float = 700.0) -> None:
    """Intents without a run id, recorded `seconds` earlier: what waiting would give."""
    from trainops.state.git import GitStateStore
    from trainops.state.layout import job_of_path
    from trainops.state.schema import read_state_file

    store = GitStateStore(user.repo.remote, branch=user.repo.branch, remote=None)
    snap = store.load()
    changes = {}
    for path, text in snap.files.items():
        if job_of_path(path) is None:
            continue
        state = read_state_file(text)
        runs = tuple(
            replace(r, created_at=r.created_at - seconds) if r.is_intent else r for r in state.runs
        )
        if runs != state.runs:
            changes[path] = replace(state, runs=runs).to_text()
    if changes:
        store.save(snap.version, changes, "test: eleven minutes later")


# TRAINOPS_SWEEP=full: every point; by default the ones where a crash loses the most
@pytest.mark.parametrize(
    "point",
    sweep.points(CRASHPOINTS, ["after-intents", "after-stage", "after-submit", "before-push#2"]),
)
def test_kill_while_uploading_and_submitting_then_apply_again(make: Any, point: str) -> None:
    user = make({name: data_job(name, trigger_word=name.upper()) for name in JOBS})
    user.repo.write("data/portraits/a.jpg", "portrait a")
    user.repo.write("data/portraits/b.jpg", "portrait b")
    user.repo.commit("data")
    killed = user.repo.trainops(
        "apply", env={"REPLICATE_API_TOKEN": replicate_cli.R8_TOKEN, "TRAINOPS_CRASHPOINT": point}
    )
    assert killed.returncode == -9, f"apply was not killed at {point}\n{explain(killed)}"
    for _ in range(4):
        user.ok("apply")
        if all(latest_run(user, name).get("run_id") for name in JOBS):
            break
        age_intents(user)
    trainings = Counter(t.input["trigger_word"] for t in user.emu.trainings)
    assert trainings == Counter({name.upper(): 1 for name in JOBS}), trainings
    uploads = Counter(f.sha256 for f in user.emu.files)
    assert len(uploads) == 1 and max(uploads.values()) == 1, uploads
    assert user.emu.count("POST", FILES_PATH) == 1
    assert user.emu.count("POST", CREATE_PATH) == 2
    [url] = {t.input["input_images"] for t in user.emu.trainings}
    assert url.endswith(user.emu.files[0].id)
    recorded = {name: latest_run(user, name).get("run_id") for name in JOBS}
    assert set(recorded.values()) == {t.id for t in user.emu.trainings}, recorded


def latest_run(user: Any, name: str) -> dict[str, Any]:
    try:
        runs = user.state_file(name)["runs"]
    except Exception:  # no state file yet
        return {}
    return dict(runs[-1]) if runs else {}
