"""The TrainingJob manifest (DESIGN §2) and `trainops.yaml` (§4) as strict pydantic models.

These models are the single source of truth: the JSON Schemas in `schemas/` are generated from
them. Every model forbids unknown keys and is frozen. A `Job` couples a validated manifest with
the YAML document it came from, so later checks can point at `file:line:col`.

One module per kind of section; other modules import the names below from the package
(`from trainops.manifest import Job, TrainingJob`).

| module | what it owns |
| --- | --- |
| `fields.py` | `CoreModel`, durations, job names, bounded repository paths, Hub/S3 name rules |
| `spec.py` | what every spec has (`SpecBase`: budget, retries, after, ...), output references |
| `provider_specs.py` | one spec per provider: `LocalSpec`, `ReplicateSpec`, ..., `AnySpec` |
| `data.py` | `spec.data` paths and which inputs `spec.digests` can pin (§18) |
| `deliver.py` | `spec.deliver` targets (§18) |
| `promote.py` | `spec.promote`: conditions and aliases (§19) |
| `sweep.py` | `spec.matrix` and `spec.sweep` (§21), `Member`, `SweepSet`, member names |
| `document.py` | `TrainingJob`, `metadata`, the revision of a spec (§3), `Job` |
| `config.py` | `trainops.yaml`: `Config`, `jobs`, `state`, `policy`, `github` |
| `provider_config.py` | `providers:` in `trainops.yaml`, one section per provider |
| `prices.py` | the built-in price tables and the Hugging Face flavors |
| `schema.py` | `json_schemas()`: what `trainops schema` writes to `schemas/` |
"""

from trainops.manifest.config import Config, GitHubConfig, Policy, StateConfig
from trainops.manifest.deliver import DeliverTarget, HuggingFaceTarget, S3Target
from trainops.manifest.document import (
    CONTENT_FIELDS,
    REVISION_FIELDS,
    Job,
    Metadata,
    TrainingJob,
    canonical_json,
    revision,
)
from trainops.manifest.fields import (
    API_VERSION,
    KIND,
    MATRIX_REF,
    PROVIDERS,
    format_duration,
    parse_duration,
)
from trainops.manifest.prices import (
    DEFAULT_PRICES,
    HF_FLAVOR_PRICES_PER_MINUTE,
    HF_FLAVORS,
    flavor_problem,
)
from trainops.manifest.promote import (
    HuggingFaceAlias,
    Promote,
    PromoteTarget,
    ReplicateAlias,
    S3Alias,
    parse_condition,
)
from trainops.manifest.provider_config import (
    HF_DEFAULT_TIMEOUT,
    HuggingFaceConfig,
    LocalConfig,
    ProvidersConfig,
    RayConfig,
    RayHardware,
    ReplicateConfig,
    SageMakerConfig,
    SageMakerSpot,
    SageMakerVpc,
)
from trainops.manifest.provider_specs import (
    AnySpec,
    HuggingFaceSpec,
    LocalSpec,
    RaySpec,
    ReplicateSpec,
    SageMakerSpec,
)
from trainops.manifest.schema import json_schemas
from trainops.manifest.spec import OUTPUT_REF, Budget, Estimate, output_refs
from trainops.manifest.sweep import (
    MAX_MEMBERS,
    Matrix,
    Member,
    Select,
    StopWhen,
    Sweep,
    SweepSet,
    member_name,
    scalar_text,
    set_of,
)

__all__ = [
    "API_VERSION",
    "CONTENT_FIELDS",
    "DEFAULT_PRICES",
    "HF_DEFAULT_TIMEOUT",
    "HF_FLAVORS",
    "HF_FLAVOR_PRICES_PER_MINUTE",
    "KIND",
    "MATRIX_REF",
    "MAX_MEMBERS",
    "OUTPUT_REF",
    "PROVIDERS",
    "REVISION_FIELDS",
    "AnySpec",
    "Budget",
    "Config",
    "DeliverTarget",
    "Estimate",
    "GitHubConfig",
    "HuggingFaceAlias",
    "HuggingFaceConfig",
    "HuggingFaceSpec",
    "HuggingFaceTarget",
    "Job",
    "LocalConfig",
    "LocalSpec",
    "Matrix",
    "Member",
    "Metadata",
    "Policy",
    "Promote",
    "PromoteTarget",
    "ProvidersConfig",
    "RayConfig",
    "RayHardware",
    "RaySpec",
    "ReplicateAlias",
    "ReplicateConfig",
    "ReplicateSpec",
    "S3Alias",
    "S3Target",
    "SageMakerConfig",
    "SageMakerSpec",
    "SageMakerSpot",
    "SageMakerVpc",
    "Select",
    "StateConfig",
    "StopWhen",
    "Sweep",
    "SweepSet",
    "TrainingJob",
    "canonical_json",
    "flavor_problem",
    "format_duration",
    "json_schemas",
    "member_name",
    "output_refs",
    "parse_condition",
    "parse_duration",
    "revision",
    "scalar_text",
    "set_of",
]
