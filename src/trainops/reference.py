"""The manifest reference (`docs/manifest.md`), generated from the JSON Schemas of the pydantic
models, as `schemas/` is: every field, its type, default and constraints come from the models, so
the page cannot drift from what validation accepts. The prose for each field lives here, keyed by
its path; `python -m trainops.reference` rewrites the page, `--check` fails when it is stale.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from trainops.manifest import json_schemas
from trainops.manifest.fields import MATRIX_REF

PAGE = "docs/manifest.md"

# What each field means. Paths use `[]` for list items; fields that exist for one provider
# only say so in the generated table.
DOCS: dict[str, str] = {
    # TrainingJob
    "apiVersion": "Always `trainops/v1`.",
    "kind": "Always `TrainingJob`.",
    "metadata.name": "The job's name, unique in the repository (a DNS label).",
    "metadata.labels": "Free-form labels; `trainops cost --by LABEL` groups spend by them.",
    "spec.provider": "Where the job trains: `local` (this machine), `replicate`, "
    "`huggingface` (Hugging Face Jobs), `ray` (a Ray cluster at `RAY_ADDRESS`) or `sagemaker` "
    "(Amazon SageMaker training jobs, through boto3).",
    "spec.image": "huggingface: the Docker image the job runs, or a Space "
    "(`hf.co/spaces/owner/name`); sagemaker: the training image URI (ECR), or give `algorithm`.",
    "spec.algorithm": "sagemaker: a built-in or subscribed algorithm (`AlgorithmName`), instead "
    "of `image`.",
    "spec.instance_count": "sagemaker: how many instances of `hardware` the job runs on "
    "(`ResourceConfig.InstanceCount`); the cost is billed seconds x price x this.",
    "spec.output_repo": "huggingface: the Hub repo the job pushes its outputs to "
    "(`$TRAINOPS_OUTPUT_REPO`); its revision after the run is the `weights` output.",
    "spec.command": "The command to run, as a list; `python` is trainops' interpreter "
    "(ray: the cluster's).",
    "spec.workdir": "The command's folder, relative to the repository root "
    "(default: the manifest's folder).",
    "spec.trainer": "`owner/name[:version]`; the version may be omitted when "
    "`trainops.lock` pins it.",
    "spec.destination": "The model that receives each new version (created private when missing).",
    "spec.hardware": "Hardware name, for cost estimates and `policy.allowed_hardware`; "
    "ray: a name of `providers.ray.hardware`, which says what the entrypoint reserves; "
    "huggingface: a flavor of `huggingface_hub`'s `JobHardware` (`a10g-small`, `a100x8`, ...; "
    "one without a price has no cost estimate); sagemaker: the instance type "
    "(`ml.g5.2xlarge`, ...), required, priced from the built-in table or `prices_usd_per_second`.",
    "spec.input": "The training input. local: a JSON file at `$TRAINOPS_INPUT`; replicate: "
    "checked against the trainer's locked schema; sagemaker: `HyperParameters` (strings, the "
    "conversion shown by `plan`; a value that would not read back as written is an error) and "
    "`s3://` values as input channels. `${{ jobs.NAME.output.KEY }}` takes another "
    "job's output (and waits for it).",
    "spec.budget.max_cost_usd": "Cancel a run whose cost so far exceeds this.",
    "spec.budget.max_duration": "Cancel a run older than this (`90m`, `2h`, `1h30m`).",
    "spec.budget.max_cost_usd_total": "A set's (only with `spec.matrix`): refuse the set when "
    "its members' worst cases together cost more (docs/sweeps.md).",
    "spec.matrix": "Axes of values (`learning_rate: [1.0e-4, 3.0e-4]`): one member job per "
    "combination, named `<name>.<suffix>` from its own values; `${{ matrix.NAME }}` in "
    "`input`, `hardware`, `env` and `deliver` takes the member's value (DESIGN §21, "
    "docs/sweeps.md).",
    "spec.matrix.include": "As in GitHub Actions: each entry is added to every combination "
    "whose axis values it does not change, or else is a member of its own.",
    "spec.matrix.exclude": "As in GitHub Actions: drops every combination the entry matches "
    "(a partial match is enough); applied before `include`.",
    "spec.sweep": "Settings of the set as a whole (only with `spec.matrix`).",
    "spec.sweep.max_parallel": "At most this many members run at once; the others wait.",
    "spec.sweep.select": "Which succeeded member wins: `${{ jobs.<name>.output.KEY }}` and "
    "`spec.promote` use it.",
    "spec.sweep.select.metric": "The recorded metric compared; a member without it never wins.",
    "spec.sweep.select.goal": "`minimize` or `maximize`.",
    "spec.sweep.stop_when": "Cancel a running member whose reported metric is already out of "
    "the race (providers that report metrics while running).",
    "spec.sweep.stop_when.metric": "The metric the running members report.",
    "spec.sweep.stop_when.worse_than_best_by": "How much worse than the best so far a member "
    "may be before it is canceled.",
    "spec.env": "Names of variables passed from trainops' environment to the job; nothing "
    "else is inherited beyond a minimal base (PATH, HOME, LANG, ...).",
    "spec.estimate.duration": "Expected run time, for the worst-case cost when there is no "
    "`max_duration`.",
    "spec.retries": "Resubmissions after a failure (not after a cancel).",
    "spec.after": "Start only after these jobs' current revisions succeeded.",
    "spec.suspend": "`true`: do not start; cancel a running run.",
    "spec.rerun": "Bump to train an unchanged spec again.",
    "spec.deliver": "Where a succeeded run's outputs are copied (each entry names one target).",
    "spec.deliver[].huggingface.repo": "Hugging Face Hub repository `owner/name`.",
    "spec.deliver[].huggingface.private": "Create the repository private when missing.",
    "spec.deliver[].s3.uri": "`s3://bucket/prefix/` that receives the outputs (needs "
    "`s3:GetObject` and `s3:PutObject` on `prefix/*`, no `s3:ListBucket`: S3 permissions below).",
    "spec.promote": "After success and delivery, move aliases to the run only when its "
    "metrics pass (DESIGN §19). A `git revert` moves them back to the previous run that passed.",
    "spec.promote.when": "Metric name -> condition: an operator (`<`, `<=`, `>`, `>=`, `==`, "
    '`!=`) and a number, quoted (`eval_loss: "< 0.25"`). All must hold; a metric the run did '
    "not report fails.",
    "spec.promote.to": "The aliases (each entry names one target).",
    "spec.promote.to[].huggingface": "A branch or tag of a Hub repo the job delivers to, moved "
    "to the commit that delivered the run.",
    "spec.promote.to[].huggingface.repo": "The Hub repository (one of `spec.deliver`'s).",
    "spec.promote.to[].huggingface.ref": "The branch or tag name, like `prod` (not `main`).",
    "spec.promote.to[].huggingface.kind": "`branch` or `tag`.",
    "spec.promote.to[].s3": "A prefix that receives a copy of the run's S3 delivery; its "
    "`trainops.json`, copied last, names the run.",
    "spec.promote.to[].s3.uri": "`s3://bucket/prefix/`, outside what the delivery writes "
    "(needs `s3:GetObject`, `s3:PutObject`, `s3:DeleteObject` on `prefix/*`: S3 permissions "
    "below).",
    "spec.promote.to[].replicate": "A Replicate deployment (replicate jobs only).",
    "spec.promote.to[].replicate.deployment": "`owner/name`; its release is moved to the run's "
    "model version.",
    # trainops.yaml
    "jobs": "Globs (relative to the repository root) that select the manifests.",
    "state.backend": "Where runs are recorded: `git` (a branch of this repository).",
    "state.branch": "The state branch (never checked out).",
    "state.uri": "s3 backend: `s3://bucket/prefix` (not available yet).",
    "state.remote": "The remote the state branch is pushed to (default: `origin` when present).",
    "providers.replicate.token_env": "The environment variable holding the Replicate token.",
    "providers.huggingface.namespace": "The user or organization Hugging Face Jobs run under "
    "(endpoint `HF_ENDPOINT` and token `HF_TOKEN` come from the environment).",
    "providers.huggingface.default_timeout": "How long a Hugging Face job may run when its "
    "manifest sets no `budget.max_duration` (default 24h, `86400` seconds). trainops always "
    "sends a timeout: sent none, the service stops a job after 30 minutes. Also the duration of "
    "its worst-case cost.",
    "providers.ray.output_uri": "Where Ray runs write their outputs: `s3://bucket/prefix` or "
    "an absolute path the cluster and this machine share; each run writes under "
    "`<output_uri>/<run-id>/outputs/` (the cluster comes from `RAY_ADDRESS`).",
    "providers.ray.hardware": "Ray hardware names: what each reserves for the job's "
    "entrypoint (`num_cpus`, `num_gpus`, `memory` in bytes, custom `resources`) and its "
    "`price_per_hour` in USD, which prices Ray runs (wall seconds x price).",
    "providers.sagemaker.role_arn": "The IAM role SageMaker assumes to run the jobs (a role "
    "ARN, not a credential). Region and credentials come from the standard AWS environment.",
    "providers.sagemaker.output_uri": "`s3://bucket/prefix`: `OutputDataConfig.S3OutputPath`; a "
    "run's `weights` is `<output_uri>/<job name>/output/model.tar.gz`.",
    "providers.sagemaker.volume_gb": "`ResourceConfig.VolumeSizeInGB` of every instance.",
    "providers.sagemaker.default_timeout": "`StoppingCondition.MaxRuntimeInSeconds` of a job "
    "without `budget.max_duration` (default 24h, the service's own); also its worst-case cost.",
    "providers.sagemaker.vpc": "`VpcConfig`: run the instances in these subnets.",
    "providers.sagemaker.vpc.subnets": "Subnet ids (`subnet-...`).",
    "providers.sagemaker.vpc.security_group_ids": "Security group ids (`sg-...`).",
    "providers.sagemaker.spot": "Managed spot training (`EnableManagedSpotTraining`).",
    "providers.sagemaker.spot.max_wait": "`StoppingCondition.MaxWaitTimeInSeconds`: run time "
    "plus waiting for capacity, at least the job's max_duration.",
    "providers.local.runs_dir": "Where local runs live, relative to the repository root.",
    "policy.prune": "Cancel the active run of a job removed from git.",
    "policy.on_change": "`replace`: cancel the old revision's run and submit the new one; "
    "`queue`: let it finish first.",
    "policy.allowed_hardware": "Hardware a job may ask for (unset: any).",
    "policy.allowed_providers": "Providers a job may use (unset: any).",
    "policy.max_cost_usd_per_job": "Refuse a job whose worst case costs more.",
    "policy.require_reviewed_plan": "`apply --github` (push and schedule) and `serve --github`: "
    "a submission no reviewed plan of the commit showed exactly (revision, attempt, worst case, "
    "credentials) is started and listed on the commit (`warn`) or Blocked until a plan of the "
    "commit is reviewed (`block`); a direct push is unreviewed; docs/github.md.",
    "policy.monthly_budget_usd": "Refuse new runs that could take the month's spend over it.",
    "policy.max_concurrent_runs": "At most this many active runs; the rest wait for a slot.",
    "prices_usd_per_second": "Price per second by hardware; overrides the built-in table.",
    "github.status_context": "Prefix of the commit statuses trainops sets.",
}


S3_POLICY = """{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Sid": "TrainopsDeliver",
      "Effect": "Allow",
      "Action": ["s3:GetObject", "s3:PutObject"],
      "Resource": "arn:aws:s3:::models/team/*"
    },
    {
      "Sid": "TrainopsPromote",
      "Effect": "Allow",
      "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
      "Resource": "arn:aws:s3:::models/prod/*"
    }
  ]
}"""


def manifest_reference() -> str:
    """The markdown page."""
    schemas = {name: json.loads(text) for name, text in json_schemas().items()}
    lines = [
        "# Manifest reference",
        "",
        "<!-- Generated by `python -m trainops.reference` from the models in",
        "     src/trainops/manifest/; do not edit by hand. -->",
        "",
        "Every field a TrainingJob manifest (`jobs/*.yaml`) and `trainops.yaml` accept, with its",
        "type, default and constraints, as `trainops validate` checks them. Unknown keys are",
        "errors. The same rules, as JSON Schemas, are in `schemas/`.",
        "",
        "## How values are read",
        "",
        "- **Types are strict.** A string is never a boolean or a number, and a boolean never a",
        '  number: `suspend: "no"` is an error (write `false`), so is `retries: true` (write `1`)',
        '  and `rerun: "1_000"` (write `1000`). To pass text that YAML reads as something else,',
        '  quote it (`"1"`, `"true"`).',
        "- **An integer may be written as an integral float**: `600.0` is `600` wherever an",
        "  integer is meant, as JSON Schema counts it; `600.5` is an error there.",
        "- **Dates and times stay text.** A plain `2024-05-17` (or `2024-05-17T10:30:00Z`) is",
        '  passed to the job as the string `"2024-05-17"`, as JSON carries it; an impossible one',
        "  (`2024-13-45`, `!!timestamp foo`) is an error, as it is for PyYAML.",
        "- **Tags**: only YAML's own `!!str`, `!!int`, `!!float`, `!!bool`, `!!null`,",
        "  `!!timestamp` on a value, `!!map` on a mapping and `!!seq` on a list; any other tag, or",
        "  one on the wrong kind of node (`!!map foo`, `!!str [1, 2]`), is an error. An anchor",
        "  defined twice in a document is an error; merge keys (`<<: *base`) merge as in PyYAML.",
        "- **Everything else reads as PyYAML's safe loader reads it** (on libyaml, as trainops",
        "  parses), or is an error at its line and column: the 402 cases of the yaml-test-suite",
        "  are checked so in the test suite (`tests/unit/test_yaml_test_suite.py`).",
        "- **Empty documents are errors**: `--- ~` or a bare `---` in a manifest file says",
        "  nothing, and would read as a job deleted. A file with no document at all (empty, or",
        "  only comments) holds no job. An empty `trainops.yaml` means every default.",
        "- **Paths** (`workdir`, `data`, `runs_dir`, `jobs`) are relative to the repository, at",
        "  most 1,024 characters, and no file or folder name in them is over 255 bytes.",
        "",
        "## What only `validate` checks",
        "",
        "An editor that checks a file with the schemas in `schemas/` agrees with `trainops",
        "validate` on every value (tests/security/test_schema_parity.py), except for these checks,",
        "which need the rest of the repository or relate two values of the file:",
        "",
        "- `ray-hardware`: a Ray job's `hardware` is a name of `providers.ray.hardware` in",
        "  trainops.yaml.",
        "- `hf-flavor`: a Hugging Face job's `hardware` is a flavor the service runs.",
        "- `after`: every job named in `after` (or an output reference) exists, and is not the",
        "  job itself; no dependency cycle.",
        "- `promote-target`: a promote alias takes outputs from where the job delivers them.",
        "- `pins`: each `spec.digests` key names a remote URL of `spec.input` or a `spec.data`",
        "  key, and no key is in both `spec.data` and `spec.input`.",
        "- `matrix`: a sweep's `${{ matrix.NAME }}` names an axis (or an include key) and stands",
        "  where it may; exclude keys are axes, include keys are axes or read; include entries",
        "  make no member twice, and every member has the values its references read; at most",
        "  1,000 members; each member's values make a valid job (docs/sweeps.md).",
        "- Beyond the file: a `workdir` or `runs_dir` that leads outside the repository through a",
        "  symlink, a job name used by two manifests, and (with a lock) the trainer's input.",
        "",
        "## S3 permissions",
        "",
        "An S3 delivery (`spec.deliver[].s3`) needs `s3:GetObject` and `s3:PutObject` on its",
        "prefix; an S3 alias (`spec.promote.to[].s3`) reads the delivery (`s3:GetObject`, the",
        "statement above) and needs `s3:GetObject`, `s3:PutObject` and `s3:DeleteObject` on its",
        "own prefix (`s3:AbortMultipartUpload` lets a failed copy of a file of 5 GiB or more clean",
        "up its parts). `s3:ListBucket` is not needed: promotion takes the file names from the",
        "delivery's `trainops.json`, and a 403 where S3 would answer 404 to a caller with",
        '`s3:ListBucket` means "not there yet". With SSE-KMS, add `kms:Decrypt` and',
        "`kms:GenerateDataKey` on the key. The minimal policy (bucket `models`, delivery",
        "`s3://models/team/`, alias `s3://models/prod/`):",
        "",
        "```json",
        *S3_POLICY.splitlines(),
        "```",
    ]
    for title, name in (
        ("TrainingJob (`jobs/*.yaml`)", "trainingjob.v1.json"),
        ("trainops.yaml", "config.v1.json"),
    ):
        schema = schemas[name]
        lines += [
            "",
            f"## {title}",
            "",
            "| field | type | default | meaning |",
            "|---|---|---|---|",
        ]
        for row in _rows(schema, schema, ""):
            lines.append("| " + " | ".join(_cell(c) for c in row) + " |")
    return "\n".join(lines) + "\n"


def undocumented() -> list[str]:
    """Field paths of the models that have no prose in `DOCS`."""
    schemas = [json.loads(text) for text in json_schemas().values()]
    leaves = {
        row[0].strip("`")
        for s in schemas
        for row in _rows(s, s, "")
        if row[1] != "mapping"  # a section: its fields carry the prose
    }
    return sorted(leaves - set(DOCS))


def _rows(node: dict[str, Any], root: dict[str, Any], prefix: str) -> Iterator[list[str]]:
    """One row per field, depth first; a discriminated union lists each variant's fields once,
    marked with the variants that have them."""
    node = _deref(node, root)
    variants = [_deref(v, root) for v in node.get("oneOf", [])]
    if variants:
        tag = node.get("discriminator", {}).get("propertyName", "")
        yield from _union_rows(variants, root, prefix, tag)
        return
    required = set(node.get("required", []))
    for key, prop in node.get("properties", {}).items():
        yield from _field(f"{prefix}{key}", prop, root, key in required, "")


def _union_rows(
    variants: list[dict[str, Any]], root: dict[str, Any], prefix: str, tag: str
) -> Iterator[list[str]]:
    names = [str(v["properties"].get(tag, {}).get("const", "")) for v in variants]
    has = {
        key: [n for n, v in zip(names, variants, strict=True) if key in v["properties"]]
        for v in variants
        for key in v["properties"]
    }
    seen: set[str] = set()
    for variant in variants:
        required = set(variant.get("required", []))
        for key, prop in variant["properties"].items():
            if key in seen:
                continue
            seen.add(key)
            if key == tag:  # the discriminator: one value per variant
                prop = {"enum": names}
            only = "" if len(has[key]) == len(variants) else ", ".join(has[key])
            yield from _field(f"{prefix}{key}", prop, root, key in required, only)


def _field(
    path: str, prop: dict[str, Any], root: dict[str, Any], required: bool, only: str
) -> Iterator[list[str]]:
    inner = _deref(_non_null(prop), root)
    default = "required" if required else _default(prop)
    meaning = DOCS.get(path, "")
    if only:
        meaning = f"({only} only) {meaning}".strip()
    if "oneOf" in inner:
        yield [f"`{path}`", "mapping", default, meaning]
        yield from _rows(inner, root, f"{path}.")
        return
    if inner.get("type") == "object" and "properties" in inner:
        yield [f"`{path}`", "mapping", default, meaning]
        yield from _rows(inner, root, f"{path}.")
        return
    items = _deref(inner.get("items", {}), root) if inner.get("type") == "array" else {}
    if "properties" in items:
        yield [f"`{path}`", "list of mappings", default, meaning]
        yield from _rows(items, root, f"{path}[].")
        return
    yield [f"`{path}`", _type(prop, root), default, meaning]


def _deref(node: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        found: dict[str, Any] = root["$defs"][ref.rsplit("/", 1)[1]]
        return found
    return node


def _non_null(prop: dict[str, Any]) -> dict[str, Any]:
    options = [o for o in prop.get("anyOf", []) if o.get("type") != "null"]
    return options[0] if len(options) == 1 else prop


def _type(prop: dict[str, Any], root: dict[str, Any]) -> str:
    prop = _deref(prop, root)
    if prop.get("pattern") == MATRIX_REF.pattern:  # fields.SCHEMA_MATRIX_TEXT
        return "text with `${{ matrix.NAME }}` (a sweep's member value, docs/sweeps.md)"
    if "const" in prop:
        return f"`{prop['const']}`"
    if "enum" in prop:
        return " \\| ".join(f"`{v}`" for v in prop["enum"])
    if "anyOf" in prop:
        return " or ".join(_type(o, root) for o in prop["anyOf"] if o.get("type") != "null") + (
            " or null" if any(o.get("type") == "null" for o in prop["anyOf"]) else ""
        )
    kind = prop.get("type", "any")
    if kind == "array":
        text = f"list of {_type(prop.get('items', {}), root)}"
    elif kind == "object" and isinstance(prop.get("additionalProperties"), dict):
        text = f"mapping of {_type(prop['additionalProperties'], root)}"
    elif kind == "object":
        text = "mapping"
    else:
        text = str(kind)
    limits = [
        f"{label} {prop[key]}"
        for key, label in (
            ("minimum", ">="),
            ("exclusiveMinimum", ">"),
            ("maximum", "<="),
            ("minLength", "length >="),
            ("maxLength", "length <="),
            ("minItems", "items >="),
        )
        if key in prop
    ]
    if "pattern" in prop:
        limits.append(f"matching `{prop['pattern']}`")
    if prop.get("examples"):
        limits.append("e.g. " + ", ".join(f"`{e}`" for e in prop["examples"]))
    return text + (f" ({'; '.join(limits)})" if limits else "")


def _default(prop: dict[str, Any]) -> str:
    if "default" not in prop:
        return "-"
    return f"`{json.dumps(prop['default'])}`"


def _cell(text: str) -> str:
    return text.replace("\n", " ").replace("|", "\\|") if "`" not in text else _code_cell(text)


def _code_cell(text: str) -> str:
    # A pipe inside backticks still splits a GitHub table cell: escape it there too.
    return text.replace("\n", " ").replace("\\|", "|").replace("|", "\\|")


def main(argv: list[str]) -> int:
    """`python -m trainops.reference [--check] [ROOT]`: write (or check) docs/manifest.md."""
    check = "--check" in argv
    root = Path(next((a for a in argv if not a.startswith("--")), "."))
    path = root / PAGE
    text = manifest_reference()
    current = path.read_text() if path.exists() else None
    if current == text:
        print(f"{path} is up to date")
        return 0
    if check:
        print(f"{path}: out of date; run `python -m trainops.reference`", file=sys.stderr)
        return 1
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
