"""spec.data on Replicate (DESIGN §18), as a user runs it: the CLI as a subprocess in a real git
repository, the Replicate emulator's files API behind the official client. `plan` shows each
package and the cost; `apply` uploads a package once, and the training's input holds the file's
URL; unchanged data never uploads again; an edit is a new revision and one new upload; what must
never leave the machine is never in an upload; a package over 100 MiB is refused by `plan`."""

from __future__ import annotations

import io
import random
import zipfile
from pathlib import Path
from typing import Any

import yaml

from tests.e2e import test_replicate_cli as replicate_cli
from tests.emulators.replicate import CREATE_PATH, FILES_PATH
from tests.support.gitrepo import git
from tests.support.workspace import explain

TRAINER = replicate_cli.TRAINER
emu, make = replicate_cli.emu, replicate_cli.make  # the fixtures: a user's repo on the emulator

MIB = 1024 * 1024
SECRET = "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY"


def data_job(name: str = "portraits", folder: str = "data/portraits/", **input: Any) -> str:
    doc = {
        "apiVersion": "trainops/v1",
        "kind": "TrainingJob",
        "metadata": {"name": name},
        "spec": {
            "provider": "replicate",
            "trainer": TRAINER,
            "destination": "acme/portraits",
            "hardware": "gpu-h100",
            "input": {"steps": 1000, **input},
            "budget": {"max_duration": "2h"},
            "data": {"input_images": folder},
        },
    }
    return yaml.safe_dump(doc, sort_keys=False)


def portraits(make: Any) -> Any:
    user = make({"portraits": data_job()})
    user.repo.write("data/portraits/a.jpg", "portrait a")
    user.repo.write("data/portraits/sub/b.jpg", "portrait b")
    user.repo.write("data/portraits/.env", SECRET + "\n")
    user.repo.commit("portraits")
    return user


def uploaded_names(user: Any, file_id: str) -> list[str]:
    with zipfile.ZipFile(io.BytesIO(user.emu.file_content(file_id))) as zf:
        return sorted(zf.namelist())


def test_plan_shows_the_package_and_cost_and_uploads_nothing(make: Any) -> None:
    user = portraits(make)
    out = user.ok("plan").stdout
    line = next(x for x in out.splitlines() if "input_images:" in x)
    assert "portraits: input_images: data/portraits/ -> 2 files" in line
    assert ".env (environment file)" in line
    assert "$10.98" in out  # the worst case: gpu-h100's price for the 2 h budget
    markdown = user.ok("plan", "--output", "markdown").stdout
    assert "#### Data packages" in markdown and "2 files" in markdown
    assert (user.emu.count("POST", FILES_PATH), user.emu.files) == (0, [])


def test_apply_uploads_once_reuses_it_and_an_edit_uploads_once_more(make: Any) -> None:
    user = portraits(make)
    user.ok("apply")
    [upload] = user.emu.files
    [training] = user.emu.trainings
    assert training.input["input_images"] == f"{user.emu.base_url}/v1/files/{upload.id}"
    assert uploaded_names(user, upload.id) == ["a.jpg", "sub/b.jpg"]  # never the .env
    revision = user.state_file("portraits")["runs"][0]["revision"]

    user.emu.advance(200)  # succeeded
    user.ok("apply")
    user.ok("apply")
    assert (len(user.emu.files), user.creates()) == (1, 1)

    user.repo.write("data/portraits/a.jpg", "portrait a, retouched")
    user.repo.commit("retouch a")
    user.ok("apply")
    first, second = user.emu.files
    assert (first.id, len(user.emu.trainings), user.creates()) == (upload.id, 2, 2)
    runs = user.state_file("portraits")["runs"]
    assert runs[-1]["revision"] != revision
    assert user.emu.trainings[1].input["input_images"].endswith(second.id)
    user.ok("apply")
    assert (user.emu.count("POST", FILES_PATH), user.creates()) == (2, 2)
    for f in user.emu.files:
        assert SECRET.encode() not in user.emu.file_content(f.id)


def test_an_expired_upload_is_sent_again_for_the_next_run(make: Any) -> None:
    user = portraits(make)
    user.ok("apply")
    user.emu.expire_file(user.emu.files[0].id)
    user.repo.write_job("portraits", data_job(steps=1200))  # a new revision, same data
    user.repo.commit("more steps")
    user.ok("apply")
    assert (len(user.emu.files), user.creates()) == (2, 2)


def test_a_folder_over_100_mib_is_refused_by_plan_before_any_upload(
    make: Any, tmp_path: Path
) -> None:
    user = make({"portraits": data_job(folder="data/big/")})
    rng = random.Random(16)  # incompressible: the zip is as large as its files
    big = user.repo.root / "data" / "big"
    big.mkdir(parents=True)
    try:
        for i in range(2):
            (big / f"part-{i}.bin").write_bytes(rng.randbytes(50 * MIB + MIB // 2))
        git(user.repo.root, "add", "data/big")  # only what git holds is ever packaged
        result = user.run("plan")
        assert result.returncode == 1, explain(result)
        text = result.stdout + result.stderr
        assert "jobs/portraits.yaml:" in text and "spec.data.input_images" in text
        assert "over the provider's limit of 95.4 MiB (99999999 bytes)" in text
        assert "Traceback" not in text
        assert user.emu.count("POST", FILES_PATH) == 0
        assert user.emu.count("POST", CREATE_PATH) == 0
    finally:
        git(user.repo.root, "rm", "-q", "-r", "--cached", "data/big")
        for f in big.iterdir():
            f.unlink()
        big.rmdir()
