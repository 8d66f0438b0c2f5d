"""Never twice, never lost (DESIGN §8): `trainops apply` killed with SIGKILL at every step
boundary and at random moments, and two applies racing on clones of one remote.

After each kill, apply runs again until the world settles. Trainings are counted where they
happen: the training command appends its run id to a ledger file when it starts. The invariants:
every (job, revision) of the final commit trained exactly once and is recorded in state as
Succeeded with its run id; every run directory is the claim of one (job, revision, attempt), says
so in its meta.json, and is recorded in state; an attempt 2 exists only after an attempt 1 whose
intent never reached the provider (no run directory: nothing trained).

`TRAINOPS_TRIALS` (default 6) sets the number of random kills (a third of it, at least 2, the
two-clone and `git clean` trials); `TRAINOPS_SEED` the RNG seed.
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.workspace import (
    UserRepo,
    eventually,
    explain,
    group_alive,
    manifest,
)

CRASHPOINTS = [
    "after-observe",
    "before-push#1",  # the intents' commit built, not published
    "after-intents",
    "after-cancel",
    "after-submit",
    "before-push#2",  # run ids recorded in a commit, not published
    "after-save",
]
TRIALS = int(os.environ.get("TRAINOPS_TRIALS", "6"))
SEED = int(os.environ.get("TRAINOPS_SEED", "20240601"))
MakeRepo = Callable[..., UserRepo]


@pytest.fixture
def make(tmp_path: Path) -> Iterator[MakeRepo]:
    repos: list[UserRepo] = []

    def factory(jobs: dict[str, str], name: str = "repo", **kwargs: Any) -> UserRepo:
        repo = UserRepo.create(tmp_path, jobs, name=name, **kwargs)
        repos.append(repo)
        return repo

    yield factory
    for repo in repos:
        repo.cleanup()


def write_jobs(repo: UserRepo, names: Iterable[str], **input: Any) -> None:
    for name in names:
        repo.write_job(name, manifest(name, {"ledger": repo.ledger_path(), **input}))


def settle(repo: UserRepo, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Apply again until every run of a job in git has ended (`apply --wait`)."""
    result = repo.trainops(
        "apply", "--wait", "--interval", "0.1", "--timeout", str(timeout), timeout=timeout + 30
    )
    assert result.returncode == 0, explain(result)
    assert "gave up waiting" not in result.stderr, explain(result)
    return result


def settle_own(repo: UserRepo, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """`settle`, for one of several clones: its own runs end, and the other clones' runs it
    cannot see (Unknown) are the only reason `--wait` may exit 1."""
    result = repo.trainops(
        "apply", "--wait", "--interval", "0.1", "--timeout", str(timeout), timeout=timeout + 30
    )
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode in (0, 1), explain(result)
    assert all(": Unknown (runs on " in line for line in errors), explain(result)
    assert (result.returncode == 1) == bool(errors), explain(result)
    return result


def submitted(*outputs: str) -> Counter[str]:
    """Run ids that apply reported as submitted (the provider was called for them)."""
    return Counter(
        re.findall(r": submitted revision \S+ attempt \d+ as run (\S+)", "\n".join(outputs))
    )


def assert_submitted_at_most_once(*outputs: str) -> None:
    """§8: the provider is called once per (job, revision, attempt); a run whose submitter
    died is adopted, never submitted again."""
    twice = {run: n for run, n in submitted(*outputs).items() if n > 1}
    assert not twice, f"submitted more than once: {twice}"


def never_started(repo: UserRepo) -> set[str]:
    """Claims whose submitter was killed between claiming the run and starting it: adoption
    closes them as never started (nothing trained) and the intent's next attempt trains."""
    from trainops.providers.local import NEVER_STARTED

    return {
        run_id for run_id in repo.run_ids() if repo.status(run_id).get("error") == NEVER_STARTED
    }


def assert_exactly_once(
    repo: UserRepo, canceled: Iterable[str] = (), others: Iterable[UserRepo] = ()
) -> dict[str, int]:
    """The invariants of this module's docstring, on a settled repository and the `others`
    clones of its remote (each run claimed by exactly one clone); `canceled` are the runs of
    replaced revisions, which must have ended canceled with their processes gone. Returns
    counts for the report."""
    from trainops.state.model import Health

    clones = [repo, *others]
    owner = {}
    for clone in clones:
        for run_id in clone.run_ids():
            assert run_id not in owner, f"{run_id} claimed by two clones"
            owner[run_id] = clone
    exempt = set().union(*(never_started(c) for c in clones))

    revisions = repo.revisions()
    state = repo.state()
    dirs = sorted(owner)
    ledger = Counter(repo.ledger())

    twice = {run: n for run, n in ledger.items() if n > 1}
    assert not twice, f"trainings started more than once: {twice}"
    trained = Counter(run.rsplit("-", 1)[0] for run in ledger)  # (job, revision)
    again = {key: n for key, n in trained.items() if n > 1}
    assert not again, f"a revision trained more than once: {again}"

    claims = []
    for run_id in dirs:
        meta = owner[run_id].meta(run_id)
        if not meta and run_id in exempt:
            continue
        assert meta, f"run directory {run_id} has no meta.json: a claim without a run"
        assert f"{meta['job']}-{meta['revision']}-{meta['attempt']}" == run_id, meta
        claims.append((meta["job"], meta["revision"], meta["attempt"]))
    assert len(set(claims)) == len(claims)
    assert set(ledger) <= set(dirs)

    assert not exempt & set(ledger), f"a claim closed as never started trained: {exempt}"
    recorded = {r.run_id: r for s in state.values() for r in s.runs if r.run_id}
    dirs = [d for d in dirs if d not in exempt]
    assert set(dirs) == set(recorded), (
        f"runs on disk but not in state: {sorted(set(dirs) - set(recorded))}; "
        f"in state but not on disk: {sorted(set(recorded) - set(dirs))}"
    )

    for job, revision in revisions.items():
        done = [r for r in state[job].of_revision(revision) if r.health is Health.SUCCEEDED]
        assert len(done) == 1, (job, state[job].runs)
        assert done[0].run_id is not None and done[0].run_id in ledger
        assert owner[done[0].run_id].status(done[0].run_id)["status"] == "succeeded"

    retried = 0
    for job_state in state.values():
        by_key = {(r.revision, r.attempt): r for r in job_state.runs}
        for revision, attempt in by_key:
            if attempt == 1:
                continue
            before = by_key.get((revision, attempt - 1))
            assert before is not None and before.lost and before.run_id is None, (
                f"{job_state.job} has attempt {attempt} of {revision} though attempt "
                f"{attempt - 1} was not a lost intent: {before}"
            )
            assert f"{job_state.job}-{revision}-{attempt - 1}" not in dirs
            retried += 1

    for run_id in canceled:
        status = owner[run_id].status(run_id)
        assert status["status"] == "canceled", (run_id, status)
        assert not group_alive(status["pgid"])
        assert recorded[run_id].health is Health.CANCELED
    return {"runs": len(dirs), "trainings": sum(ledger.values()), "lost_intents": retried}


# ---- every step boundary ---------------------------------------------------------------------

JOBS = ["j0", "j1", "j2", "j3"]


@pytest.mark.parametrize("point", CRASHPOINTS)
def test_kill_at_each_step_boundary_then_apply_again(make: MakeRepo, point: str) -> None:
    """One apply that cancels two runs (their specs changed) and submits four (the two new
    revisions and two new jobs), killed at `point`, mid-batch."""
    repo = make({})
    write_jobs(repo, JOBS[:2], hold=repo.hold_path("never"))
    repo.commit("two long runs")
    repo.apply_ok()
    old = repo.run_ids()
    assert len(old) == 2
    eventually(lambda: sorted(repo.ledger()) == old, "both long runs to start")

    write_jobs(repo, JOBS)
    repo.commit("change both, add two")
    commits = repo.state_commits()
    killed = repo.trainops("apply", env={"TRAINOPS_CRASHPOINT": point})
    assert killed.returncode == -9, f"apply was not killed at {point}\n{explain(killed)}"
    expected_commits = {
        "after-observe": 0,
        "before-push#1": 0,
        "after-intents": 1,
        "after-cancel": 1,
        "after-submit": 1,
        "before-push#2": 1,
        "after-save": 2,
    }[point]
    assert repo.state_commits() == commits + expected_commits

    recovered = settle(repo)
    assert_submitted_at_most_once(killed.stdout, recovered.stdout)
    counts = assert_exactly_once(repo, canceled=old)
    assert counts["trainings"] == 2 + len(JOBS)
    # Intents recorded but never submitted are declared lost (their owner is dead) and the
    # next attempt is submitted: killed before the first submit, all four; after it, three.
    lost = {"after-intents": 4, "after-cancel": 4, "after-submit": 3}.get(point, 0)
    assert counts["lost_intents"] == lost


# ---- random moments --------------------------------------------------------------------------

RANDOM_JOBS = ["r0", "r1", "r2", "r3", "r4"]


@pytest.mark.timeout(60 + 20 * TRIALS)
def test_kill_at_random_moments_then_apply_again(make: MakeRepo) -> None:
    """SIGKILL after a random delay (stratified over one apply's duration, seeded), N trials,
    each on a fresh repository whose apply submits five jobs."""
    rng = random.Random(SEED)
    calibration = make({}, name="calibration")
    write_jobs(calibration, RANDOM_JOBS)
    calibration.commit()
    began = time.monotonic()
    calibration.apply_ok()
    duration = time.monotonic() - began

    where: Counter[str] = Counter()
    for trial in range(TRIALS):
        delay = duration * (trial + rng.random()) / TRIALS
        repo = make({}, name=f"trial{trial}")
        write_jobs(repo, RANDOM_JOBS)
        repo.commit()
        proc = repo.start("apply")
        time.sleep(delay)  # the fault's timing, not a wait for a state
        proc.kill()
        out, err = proc.communicate(timeout=30)
        assert proc.returncode in (0, -9), f"trial {trial} (seed {SEED}): {err}"
        where[_landing(repo, proc.returncode)] += 1

        recovered = settle(repo)
        try:
            assert_submitted_at_most_once(out, recovered.stdout)
            counts = assert_exactly_once(repo)
        except AssertionError as exc:
            raise AssertionError(
                f"trial {trial}, delay {delay:.3f}s of {duration:.3f}s, seed {SEED}: {exc}"
            ) from exc
        where["recovered with a lost intent"] += counts["lost_intents"] > 0
        where["recovered a claim never started"] += bool(never_started(repo))
    print(f"\n{TRIALS} random kills over {duration:.2f}s (seed {SEED}): {dict(where)}")


def _landing(repo: UserRepo, code: int | None) -> str:
    """Roughly where the kill landed, from what it left behind."""
    if code == 0:
        return "after apply ended"
    commits, runs = repo.state_commits(), len(repo.run_ids())
    if commits == 0:
        return "before intents" if runs == 0 else "while saving intents"
    if commits == 1:
        return f"after intents, {runs} of {len(RANDOM_JOBS)} submitted"
    return "after the final save"


# ---- two reconcilers racing ------------------------------------------------------------------

ROUNDS = 3
SLOW_PUSH = "#!/bin/sh\nsleep 0.3\n"  # widens the window in which both racers read one version


def test_two_applies_racing_on_clones_never_duplicate(make: MakeRepo, tmp_path: Path) -> None:
    """Two clones of one remote on one machine, each with its own runs (a local run belongs to
    the clone that started it). Each round changes every job (a new revision each) and starts
    both applies at once; then both apply until settled, each finishing its own runs. Each run
    is submitted by exactly one of them (the other loses the compare-and-swap, or finds the
    intent and leaves it to its clone), nothing trains twice, and both clones see one state."""
    rng = random.Random(SEED)
    first = make({})
    assert first.remote is not None
    hook = first.remote / "hooks" / "pre-receive"
    hook.write_text(SLOW_PUSH)
    hook.chmod(0o755)
    second = UserRepo.clone_of(first, tmp_path / "second")
    outputs: list[str] = []
    lost_swaps = 0
    try:
        for round_ in range(ROUNDS):
            write_jobs(first, JOBS, round=round_)
            first.commit(f"round {round_}")
            second.pull()
            racers = [first.start("apply")]
            time.sleep(rng.uniform(0, 0.1))  # vary the interleaving
            racers.append(second.start("apply"))
            for proc in racers:
                out, err = proc.communicate(timeout=60)
                assert proc.returncode == 0, f"round {round_}: exit {proc.returncode}\n{out}{err}"
                lost_swaps += out.count("state moved while planning")
                outputs.append(out)
            for clone in (first, second) if round_ % 2 else (second, first):
                clone.wait_all_terminal()
                outputs.append(settle_own(clone).stdout)
            counts = assert_exactly_once(first, others=[second])
            assert counts["lost_intents"] == 0
            assert counts["trainings"] == len(JOBS) * (round_ + 1)
            claimed = Counter(first.run_ids() + second.run_ids())
            assert submitted(*outputs) == claimed, "each run submitted once"
        assert lost_swaps > 0, "the applies never raced: no compare-and-swap was lost"
    finally:
        second.cleanup()

    views = []
    for repo in (first, second):
        planned = repo.trainops("plan", "--detailed-exitcode", "--output", "json")
        assert planned.returncode == 0, explain(planned)
        views.append(
            [
                {k: v for k, v in row.items() if k not in ("age_seconds", "reason")}
                for row in json.loads(planned.stdout)["jobs"]
            ]
        )
    assert views[0] == views[1]
    assert {(row["sync"], row["health"]) for row in views[0]} == {("Synced", "Succeeded")}
    print(f"\n{ROUNDS} racing rounds, {lost_swaps} compare-and-swap(s) lost and re-planned")


# ---- why a run was canceled survives the kill -------------------------------------------------


def test_a_kill_right_after_canceling_does_not_make_the_cancel_look_external(
    make: MakeRepo,
) -> None:
    """Suspend cancels the run; killed before anything is saved, the next apply must still know
    trainops canceled it for the suspension, so that unsuspending starts the job again."""
    repo = make({})
    spec = {"ledger": repo.ledger_path(), "hold": repo.hold_path("a")}
    repo.write_job("a", manifest("a", spec))
    repo.commit()
    repo.apply_ok()
    (first,) = repo.run_ids()
    repo.wait_status(first, {"running"})

    repo.write_job("a", manifest("a", spec, suspend=True))
    repo.commit()
    killed = repo.trainops("apply", env={"TRAINOPS_CRASHPOINT": "after-cancel"})
    assert killed.returncode == -9, explain(killed)
    assert repo.status(first)["status"] == "canceled"

    repo.write_job("a", manifest("a", spec, suspend=False))
    repo.commit()
    repo.apply_ok()
    revision = repo.revisions()["a"]
    assert repo.run_ids() == [first, f"a-{revision}-2"]
    assert [(r.attempt, r.reason) for r in repo.state()["a"].runs] == [(1, "suspended"), (2, "")]


# ---- the claim-to-start window of the local provider ------------------------------------------


def test_a_kill_between_claiming_and_starting_a_local_run_loses_nothing(make: MakeRepo) -> None:
    """A submit killed after claiming its run directory and before starting it: the next apply
    closes the claim as never started (its claimer is dead), and the job trains as attempt 2."""
    from trainops.providers.local import NEVER_STARTED

    repo = make({})
    write_jobs(repo, ["a"])
    repo.commit()
    killed = repo.trainops("apply", env={"TRAINOPS_CRASHPOINT": "after-intents"})
    assert killed.returncode == -9, explain(killed)
    revision = repo.revisions()["a"]
    # What such a kill leaves: a claimed directory whose claimer is gone and no status.
    claim = repo.record_dir(f"a-{revision}-1")
    claim.mkdir(parents=True)
    (claim / "meta.json").write_text(
        json.dumps(
            {
                "run_id": claim.name,
                "job": "a",
                "revision": revision,
                "attempt": 1,
                "created_at": time.time(),
                "claimer": {"pid": 2**22 + 1, "ident": ""},
            }
        )
    )

    settle(repo)
    assert repo.status(claim.name)["error"] == NEVER_STARTED
    assert_exactly_once(repo)
    assert [(r.attempt, r.lost) for r in repo.state()["a"].runs] == [(1, True), (2, False)]


# ---- local runs belong to their clone ------------------------------------------------------

CLONE_TRIALS = max(2, TRIALS // 3)  # each trial is a dozen CLI runs


def status_rows(repo: UserRepo) -> dict[str, dict[str, Any]]:
    result = repo.trainops("status", "--output", "json")
    assert result.returncode == 0, explain(result)
    return {row["job"]: row for row in json.loads(result.stdout)["jobs"]}


@pytest.mark.timeout(60 + 60 * CLONE_TRIALS)
def test_two_clones_reconciling_in_turn_train_each_run_once(make: MakeRepo, tmp_path: Path) -> None:
    """Issue 12: clone A starts a local run (`retries: 1`); clone B of the same remote
    reconciles before, during and after it. B never sees A's run as lost, never resubmits or
    cancels it, and shows it Unknown with where it runs; the job ends Succeeded once A observes
    it, and every training ran exactly once. `TRAINOPS_TRIALS` scales the trial count."""
    import socket

    rng = random.Random(SEED)
    counts: Counter[str] = Counter()
    for trial in range(CLONE_TRIALS):
        a = make({}, name=f"a{trial}")
        b = UserRepo.clone_of(a, tmp_path / f"b{trial}")
        try:
            spec = {"ledger": a.ledger_path(), "hold": a.hold_path("j")}
            a.write_job("j", manifest("j", spec, retries=1))
            a.commit()
            b.pull()
            a.apply_ok()
            (run_id,) = a.run_ids()
            if rng.random() < 0.5:
                a.wait_status(run_id, {"running"})
            for _ in range(2):
                b.apply_ok()
                row = status_rows(b)["j"]
                assert row["health"] == "Unknown", row
                assert f"{socket.gethostname()}:{a.root}" in row["reason"], row
            assert b.run_ids() == []
            if trial == 0:
                logs = b.trainops("logs", "j")
                assert logs.returncode == 2 and f"lives on {socket.gethostname()}:" in logs.stderr
                # B cannot follow A's run to its end: --wait returns at once, and not with 0.
                waited = b.trainops("apply", "--wait", "--timeout", "30")
                assert waited.returncode == 1, explain(waited)
                assert "error: j: Unknown (runs on " in waited.stderr, explain(waited)
            a.release("j")
            a.wait_all_terminal()
            if rng.random() < 0.5:  # B reconciles once more after the run ended, before A
                b.apply_ok()
                assert status_rows(b)["j"]["health"] == "Unknown"
                counts["B after the end"] += 1
            settle(a)
            assert status_rows(a)["j"]["health"] == "Succeeded"
            assert status_rows(b)["j"]["health"] == "Succeeded"
            b.apply_ok()
            assert status_rows(b)["j"]["health"] == "Succeeded"
            assert b.run_ids() == [] and a.run_ids() == [run_id]
            assert a.ledger() == [run_id], f"trial {trial} (seed {SEED})"
            assert_exactly_once(a, others=[b])
            assert [(r.attempt, r.health.value) for r in a.state()["j"].runs] == [(1, "Succeeded")]
        finally:
            b.cleanup()
    print(f"\n{CLONE_TRIALS} two-clone trials (seed {SEED}): {dict(counts)}")


@pytest.mark.timeout(60 + 45 * CLONE_TRIALS)
def test_git_clean_during_a_run_starts_no_second_copy(make: MakeRepo) -> None:
    """Issue 12: `git clean -xfd` (it deletes `.trainops/`) at a random moment of a run, then
    apply: the run is still known and alive (its record lives in the git directory), nothing is
    submitted again, and the job ends Succeeded with exactly one run per (job, revision,
    attempt)."""
    from tests.support.gitrepo import git

    rng = random.Random(SEED)
    for trial in range(CLONE_TRIALS):
        repo = make({}, name=f"clean{trial}")
        spec = {"ledger": repo.ledger_path(), "hold": repo.hold_path("j")}
        repo.write_job("j", manifest("j", spec, retries=1))
        repo.commit()
        repo.apply_ok()
        (run_id,) = repo.run_ids()
        time.sleep(rng.uniform(0, 0.5))  # the fault's timing, not a wait for a state
        git(repo.root, "clean", "-xfdq")
        assert not (repo.root / ".trainops").exists()

        again = repo.apply_ok()
        assert "submitted" not in again.stdout, explain(again)
        assert status_rows(repo)["j"]["health"] in ("Pending", "Running")
        repo.release("j")
        settle(repo)
        assert repo.run_ids() == [run_id]
        assert repo.ledger() == [run_id], f"trial {trial} (seed {SEED})"
        assert_exactly_once(repo)
