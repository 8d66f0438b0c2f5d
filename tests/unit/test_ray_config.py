"""The Ray provider's configuration and offline checks (issue 14): the hardware table and its
prices, output_uri, no address in trainops.yaml, run records read from the state branch, and the
workdir package (what travels, what never does, the size limit)."""

from __future__ import annotations

import zipfile
from io import BytesIO
from pathlib import Path

import pytest
from pydantic import ValidationError

from tests.support.gitrepo import git
from tests.unit.test_validate import validate
from trainops.manifest import Config
from trainops.providers._outputs import named
from trainops.providers.ray import check_run, submission_id
from trainops.repo import WorkingTree
from trainops.state.model import Run
from trainops.workdir import WorkdirError, files, pack


def ray_config(**ray: object) -> Config:
    return Config.model_validate({"providers": {"ray": ray}})


def test_hardware_prices_join_the_price_table() -> None:
    config = ray_config(hardware={"gpu-a100": {"num_gpus": 1, "price_per_hour": 3.6}})
    assert config.prices_usd_per_second["gpu-a100"] == pytest.approx(0.001)
    assert config.prices_usd_per_second["gpu-h100"] == 0.001525  # the others stay priced


def test_a_hardware_name_priced_twice_differently_is_an_error() -> None:
    with pytest.raises(ValidationError, match="'gpu-t4' already has a price"):
        ray_config(hardware={"gpu-t4": {"num_gpus": 1, "price_per_hour": 9}})


@pytest.mark.parametrize(
    ("uri", "ok"),
    [
        ("s3://acme-models/runs", True),
        ("/mnt/shared/runs/", True),
        ("runs", False),
        ("https://example.com/x", False),
        ("/mnt/../etc", False),
        ("s3://A_B/x", False),
    ],
)
def test_output_uri_is_s3_or_an_absolute_path(uri: str, ok: bool) -> None:
    if ok:
        assert ray_config(output_uri=uri).providers.ray.output_uri == uri.rstrip("/")
    else:
        with pytest.raises(ValidationError):
            ray_config(output_uri=uri)


def test_the_cluster_address_is_never_read_from_the_repository() -> None:
    with pytest.raises(ValidationError, match="set RAY_ADDRESS in the environment"):
        ray_config(address="http://evil.example:8265")


RAY_JOB = """\
apiVersion: trainops/v1
kind: TrainingJob
metadata: {name: big}
spec:
  provider: ray
  command: [python, train.py]
  hardware: gpu-a10
"""


def test_a_hardware_name_the_table_lacks_is_refused_at_its_line(tmp_path: Path) -> None:
    cfg = "providers:\n  ray:\n    hardware:\n      gpu-a100: {num_gpus: 1}\n"
    result = validate(tmp_path, {"trainops.yaml": cfg, "jobs/big.yaml": RAY_JOB})
    assert [(p.file, p.line, p.col, p.message) for p in result.problems] == [
        (
            "jobs/big.yaml",
            7,
            3,
            "hardware 'gpu-a10' is not in the Ray hardware table (known: gpu-a100)",
        )
    ]
    assert "big" in result.invalid


def run(run_id: str | None, outputs: dict[str, str] | None = None) -> Run:
    return Run("0123456789ab", 1, "ray", "h", 0.0, run_id=run_id, outputs=outputs or {})


@pytest.mark.parametrize(
    ("record", "why"),
    [
        (run("trainops-a-0123456789ab-1"), ""),
        (run(None), ""),
        (run("trainops-b-0123456789ab-1"), "is not a's"),
        (run("trainops-a-0123456789ab-2"), "is not a's"),
        (
            run(
                "trainops-a-0123456789ab-1",
                {"weights": "s3://b/runs/trainops-a-0123456789ab-1/outputs/w.bin"},
            ),
            "",
        ),
        (run("trainops-a-0123456789ab-1", {"weights": "/etc/passwd"}), "own output folder"),
        (
            run("trainops-a-0123456789ab-1", {"w": "/x/trainops-a-0123456789ab-1/outputs/../../y"}),
            "own output folder",
        ),
        (run("trainops-a-0123456789ab-1", {"w": "https://evil.example/w"}), "own output folder"),
        # the folder itself, or a name merely containing the run id, is not a file inside it
        (
            run("trainops-a-0123456789ab-1", {"w": "s3://b/trainops-a-0123456789ab-1/outputs/"}),
            "own",
        ),
        (run("trainops-a-0123456789ab-1", {"w": "/x/trainops-a-0123456789ab-1/outputsx/w"}), "own"),
        (
            run("trainops-a-0123456789ab-1", {"w": "s3:/b/trainops-a-0123456789ab-1/outputs/w"}),
            "own",
        ),
    ],
)
def test_a_recorded_run_must_be_the_jobs_own(record: Run, why: str) -> None:
    found = check_run("a", record)
    assert (why in found) if why else found == ""


def test_the_run_id_is_a_function_of_job_revision_and_attempt() -> None:
    assert submission_id("portraits", "0123456789ab", 2) == "trainops-portraits-0123456789ab-2"


def test_outputs_are_named_as_for_local() -> None:
    assert named(["weights.bin", "sub/weights.pt", "metrics.json", ".tmp.bin", "a/.hidden/x"]) == {
        "weights": "weights.bin",
        "metrics": "metrics.json",
    }


def _repo(root: Path, tree: dict[str, bytes]) -> Path:
    git(root, "init", "--quiet")
    for name, content in tree.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(content)
    git(root, "add", "-A")  # only what git holds is packaged (DESIGN §13b)
    return root


def test_the_workdir_zip_holds_code_never_credentials_links_or_ignored_files(
    tmp_path: Path,
) -> None:
    root = _repo(
        tmp_path,
        {
            "train/train.py": b"print(1)\n",
            "train/lib/util.py": b"X = 1\n",
            "train/.env": b"HF_TOKEN=hf_x\n",
            "train/id_rsa": b"-----BEGIN OPENSSH PRIVATE KEY-----\n",
            "train/big.ckpt": b"0" * 10,
            ".gitignore": b"*.ckpt\n",
        },
    )
    (root / "train" / "link").symlink_to("/etc/passwd")
    git(root, "add", "train/link")
    content = pack(WorkingTree(root), "train", 10**6)
    names = zipfile.ZipFile(BytesIO(content)).namelist()
    assert names == ["lib/util.py", "train.py"]
    assert pack(WorkingTree(root), "train", 10**6) == content  # the cluster caches by hash
    left = dict(files(WorkingTree(root), "train").left_out)
    assert set(left) == {".env", "id_rsa", "link", "big.ckpt"}
    assert left["big.ckpt"] == ".gitignore" and left["link"] == "symlink (not followed)"


def test_a_workdir_over_the_limit_is_refused_with_its_size_and_the_limit(tmp_path: Path) -> None:
    root = _repo(tmp_path, {"w/data.bin": b"x" * 3000, "w/t.py": b"print(1)\n"})
    with pytest.raises(WorkdirError) as caught:
        pack(WorkingTree(root), "w", 2048)
    assert "holds 2.9 KiB (3009 bytes) of files" in caught.value.message
    assert "limit of 2.0 KiB" in caught.value.message


def test_validate_refuses_a_ray_workdir_over_the_limit_at_its_line(tmp_path: Path) -> None:
    from trainops.workspace import validate_workspace

    root = _repo(
        tmp_path,
        {
            "trainops.yaml": b"jobs: ['jobs/*.yaml']\n",
            "jobs/big.yaml": RAY_JOB.replace("  hardware: gpu-a10\n", "  workdir: w\n").encode(),
            "w/train.py": b"print(1)\n",
        },
    )
    with (root / "w" / "data.bin").open("wb") as f:
        f.truncate(101 * 1024 * 1024)  # sparse: no disk spent
    git(root, "add", "--intent-to-add", "w/data.bin")  # in the index: it would be packaged
    result = validate_workspace(root)
    assert [(p.file, p.line, p.col) for p in result.problems] == [("jobs/big.yaml", 7, 3)]
    assert "holds 101.0 MiB" in result.problems[0].message and "big" in result.invalid
