"""Benchmark: `trainops validate` against check-jsonschema and against libyaml's compose.

    python benchmarks/validate.py [--count N] [--repeat R] [--check]

Generates N manifests (a mix of Replicate and local jobs, with labels, budgets, deliveries, `after`
chains and output references) and times, as subprocesses, median of R runs:

- `trainops validate --dir D` and `check-jsonschema --schemafile schemas/trainingjob.v1.json`
  on the same N files (one manifest per file: check-jsonschema cannot read multi-document YAML);
- `trainops validate` on the same manifests packed the way a repository holds them (several
  files, some multi-document);
- `trainops validate --dir D` against libyaml's compose of the same N files (PyYAML's
  CSafeLoader, `yaml.compose_all` of each file's bytes), alternating in the same run
  (benchmarks/_timing.py): the ratio validate / compose (issue 28: at most 2x).

Targets (issue 2): validation at least 3x faster than check-jsonschema; (issue 28) validate at
most 2x compose. `--check` exits 1 when a target is missed. Start-up (`trainops --help`) is
benchmarks/startup.py's.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks._timing import median_wall, paired, trainops_command  # noqa: E402

SCHEMA = ROOT / "schemas" / "trainingjob.v1.json"
VALIDATE_TARGET = 3.0  # trainops at least this many times faster than check-jsonschema
COMPOSE_TARGET = 2.0  # `trainops validate` at most this many times libyaml's compose

# The floor: parse and compose every file (no values constructed, nothing checked).
COMPOSE = """\
import sys, yaml
for path in sys.argv[1:]:
    with open(path, "rb") as f:
        for _ in yaml.compose_all(f.read(), Loader=yaml.CSafeLoader):
            pass
"""

TRAINERS = ["ostris/flux-dev-lora-trainer", "replicate/fast-flux-trainer", "acme/sdxl-dreambooth"]
HARDWARE = ["gpu-h100", "gpu-a100-large", "gpu-l40s"]
DURATIONS = ["90m", "2h", "1h30m"]


def replicate_job(i: int, rng: random.Random, names: list[str]) -> str:
    version = f"{rng.getrandbits(256):064x}"
    text = f"""\
apiVersion: trainops/v1
kind: TrainingJob
metadata:
  name: lora-{i:05d}
  labels: {{team: {rng.choice(["vision", "audio", "search"])}, tier: t{i % 3}}}
spec:
  provider: replicate
  trainer: {rng.choice(TRAINERS)}:{version}
  destination: acme/model-{i % 40:02d}
  hardware: {rng.choice(HARDWARE)}
  input:
    input_images: https://example.com/datasets/set-{i:05d}.zip
    steps: {rng.choice([500, 1000, 2000])}
    learning_rate: {rng.choice([0.0004, 0.0001])}
    trigger_word: TOK{i}
    autocaption: {rng.choice(["true", "false"])}
  budget: {{max_cost_usd: {rng.choice([10, 20, 50])}, max_duration: {rng.choice(DURATIONS)}}}
  retries: {i % 3}
"""
    if names and i % 4 == 0:
        text += f"  after: [{rng.choice(names)}]\n"
    if i % 5 == 0:
        text += f"  deliver:\n    - huggingface: {{repo: acme/lora-{i:05d}, private: true}}\n"
        text += f"    - s3: {{uri: s3://acme-models/lora-{i:05d}/}}\n"
    return text


def local_job(i: int, rng: random.Random, names: list[str]) -> str:
    text = f"""\
# yaml-language-server: $schema=../schemas/trainingjob.v1.json
apiVersion: trainops/v1
kind: TrainingJob
metadata:
  name: eval-{i:05d}
  labels: {{team: {rng.choice(["vision", "audio", "search"])}}}
spec:
  provider: local
  command: [python, train/train.py, --seed, "{i}"]
  workdir: .
  input:
    epochs: {rng.choice([10, 100, 300])}
    learning_rate: 0.05
    data: data/shard-{i % 16}.csv
  budget: {{max_duration: {rng.choice(["10m", "45m", "1h"])}}}
"""
    if names and i % 3 == 0:
        upstream = rng.choice(names)
        text += f"  after: [{upstream}]\n"
        if upstream.startswith("lora-"):
            text += f"  estimate: {{duration: 20m}}\n  rerun: {i % 2}\n"
    return text


def generate(count: int, seed: int = 2) -> list[tuple[str, str]]:
    """(name, text) of `count` valid manifests; `after` only points at earlier jobs (no cycles)."""
    rng = random.Random(seed)
    manifests: list[tuple[str, str]] = []
    names: list[str] = []
    for i in range(count):
        make = replicate_job if rng.random() < 0.6 else local_job
        text = make(i, rng, names[-50:])
        name = text.split("name: ", 1)[1].split("\n", 1)[0]
        manifests.append((name, text))
        names.append(name)
    return manifests


def write_repository(root: Path, manifests: list[tuple[str, str]], packed: bool) -> list[Path]:
    """One manifest per file, or packed: runs of 1-6 manifests per file under team folders."""
    (root / "jobs").mkdir(parents=True)
    (root / "trainops.yaml").write_text('jobs: ["jobs/**/*.yaml"]\n')
    files: list[Path] = []
    rng = random.Random(7)
    i = 0
    while i < len(manifests):
        size = rng.choice([1, 1, 2, 3, 6]) if packed else 1
        chunk = manifests[i : i + size]
        folder = root / "jobs" / (f"team-{i % 7}" if packed else "")
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{chunk[0][0]}.yaml"
        path.write_text("---\n".join(text for _, text in chunk))
        files.append(path)
        i += size
    return files


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1000, help="manifests to generate")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per command")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()

    manifests = generate(args.count)
    replicate = sum(1 for _, text in manifests if "provider: replicate" in text)
    trainops = trainops_command()
    with tempfile.TemporaryDirectory(prefix="trainops-bench-") as tmp:
        flat, packed = Path(tmp) / "flat", Path(tmp) / "packed"
        flat_files = write_repository(flat, manifests, packed=False)
        packed_files = write_repository(packed, manifests, packed=True)
        paths = [str(p.relative_to(flat)) for p in flat_files]

        ours = median_wall([*trainops, "validate", "--dir", str(flat)], args.repeat, flat)
        peer = median_wall(
            [sys.executable, "-m", "check_jsonschema", "--schemafile", str(SCHEMA), *paths],
            args.repeat,
            flat,
        )
        ours_packed = median_wall(
            [*trainops, "validate", "--dir", str(packed)], args.repeat, packed
        )
        compose = paired(
            [*trainops, "validate", "--dir", str(flat)],
            [sys.executable, "-c", COMPOSE, *paths],
            args.repeat,
            flat,
        )

    speedup = peer / ours
    met_validate = speedup >= VALIDATE_TARGET
    met_compose = compose.cpu_ratio <= COMPOSE_TARGET
    print(
        f"{len(manifests)} manifests ({replicate} replicate, {len(manifests) - replicate} local); "
        f"median of {args.repeat} runs; python {sys.version.split()[0]}"
    )
    rows = [
        (f"trainops validate, {len(flat_files)} files", ours),
        (f"check-jsonschema, same {len(flat_files)} files", peer),
        (f"trainops validate, {len(packed_files)} files (multi-document)", ours_packed),
    ]
    for label, seconds in rows:
        print(f"  {label:<48} {seconds:7.3f} s")
    print(
        f"validate: {speedup:.1f}x faster than check-jsonschema "
        f"(target >= {VALIDATE_TARGET:g}x): {'met' if met_validate else 'MISSED'}"
    )
    print(
        f"validate / compose: {compose.cpu_ratio:.2f}x cpu, {compose.wall_ratio:.2f}x wall "
        f"(median of {compose.runs} alternating pairs: validate {compose.a.cpu:.3f} s cpu, "
        f"compose {compose.b.cpu:.3f} s cpu; target <= {COMPOSE_TARGET:g}x): "
        f"{'met' if met_compose else 'MISSED'}"
    )
    return 1 if args.check and not (met_validate and met_compose) else 0


if __name__ == "__main__":
    sys.exit(main())
