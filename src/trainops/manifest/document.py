"""The TrainingJob document (DESIGN §2) and what is derived from it: `metadata`, the revision of
its spec (§3: which fields make a new training), and `Job`, a validated manifest with the YAML
document it came from, so later checks can point at `file:line:col`."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import ConfigDict, Field

from trainops.manifest.fields import CoreModel, JobName
from trainops.manifest.provider_specs import AnySpec, Spec
from trainops.manifest.spec import output_refs
from trainops.manifest.sweep import SET_NAME_MAX, Member
from trainops.yamlsource import Document


class Metadata(CoreModel):
    name: JobName
    labels: dict[str, str] = Field(default_factory=dict)


# Fields that say *what* is trained. Changing one makes a new revision (a new training); the
# others (budget, retries, after, suspend, deliver, promote, estimate) steer the current run.
REVISION_FIELDS = (
    "provider",
    "trainer",
    "destination",
    "hardware",
    "input",
    "command",
    "workdir",
    "rerun",
    "image",
    "output_repo",
    "algorithm",
    "instance_count",
)
# Fields that say what is trained through content, not text: `data` counts by the sha256 of each
# package (`revision(data_digests=...)`), so renaming a folder with the same files trains nothing.
# `digests` counts only when present, so that pinning (or re-pinning) an input trains again
# while every job without pins keeps the revision it had.
CONTENT_FIELDS = ("data", "digests")


class TrainingJob(CoreModel):
    """apiVersion trainops/v1, kind TrainingJob."""

    model_config = ConfigDict(
        title="TrainingJob",
        json_schema_extra={
            "$id": "https://trainops.dev/schemas/trainingjob.v1.json",
            # a sweep's members are named <name>.<suffix>, at most 63 characters (DESIGN §21)
            "if": {
                "properties": {"spec": {"type": "object", "required": ["matrix"]}},
                "required": ["spec"],
            },
            "then": {
                "properties": {"metadata": {"properties": {"name": {"maxLength": SET_NAME_MAX}}}}
            },
        },
    )

    apiVersion: Literal["trainops/v1"]
    kind: Literal["TrainingJob"]
    metadata: Metadata
    spec: Spec


@dataclass(frozen=True)
class Job:
    """A validated manifest and the document it was read from. A member of a set (DESIGN §21)
    has `member`: its manifest is the set's with the member's values substituted and its
    name, `<set>.<suffix>`, as metadata.name; None for every other job."""

    manifest: TrainingJob
    doc: Document
    member: Member | None = None
    # Read once each, as the job is made: validation and the plan ask a job for its name and
    # spec a dozen times (the manifest is frozen, so the answer never changes). Plain fields,
    # not cached properties: these are set for every job of a repository, and a cached
    # property's first read (a Python-level descriptor with a lock) cost twice the set.
    name: str = field(init=False, repr=False, compare=False)
    spec: AnySpec = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", self.manifest.metadata.name)
        object.__setattr__(self, "spec", self.manifest.spec)

    @property
    def file(self) -> str:
        return self.doc.file

    def upstream(self) -> list[str]:
        """Jobs this one waits for: `after` plus every output reference in `input`."""
        names = list(self.spec.after)
        for ref_job, _key in output_refs(self.spec.input):
            if ref_job not in names:
                names.append(ref_job)
        return names


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def revision(
    spec: AnySpec,
    trainer: str | None = None,
    data_digests: Mapping[str, str] | None = None,
) -> str:
    """DESIGN §3: 12 hex of sha256 over the canonical JSON of the normalized spec.

    Normalized: defaults filled, durations canonical, the trainer version resolved through the lock
    (`trainer` is the resolved `owner/name:version`). Only `REVISION_FIELDS` count: labels and
    the fields that steer a run (budget, retries, suspend, ...) do not make a new training.
    """
    data = spec.model_dump(mode="json", include=set(REVISION_FIELDS))
    if trainer is not None and "trainer" in data:
        data["trainer"] = trainer
    if data_digests:  # only when the job has data: every other revision stays as it was
        data["data"] = dict(data_digests)
    if spec.digests:  # likewise for pins
        data["digests"] = dict(spec.digests)
    return hashlib.sha256(canonical_json(data).encode()).hexdigest()[:12]
