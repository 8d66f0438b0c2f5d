"""`trainops.yaml` (DESIGN §4): the `Config` document, which job files count (`jobs`), the state
backend, `policy` (what may run, and the money and concurrency limits), prices and GitHub settings;
`providers:` is in `trainops.manifest.provider_config`. Every field has a default."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, ConfigDict, Field, model_validator

from trainops.manifest.fields import INTEGRAL, PATH_MAX, SCHEMA_INSIDE, CoreModel, inside
from trainops.manifest.prices import DEFAULT_PRICES
from trainops.manifest.provider_config import ProvidersConfig


class StateConfig(CoreModel):
    backend: Literal["git", "s3"] = "git"
    branch: str = "trainops/state"
    uri: str | None = None
    remote: str | None = None  # default: "origin" when the repository has it


_JOBS_RULE = "patterns are relative to its root and never contain '..'"


class Policy(CoreModel):
    prune: bool = True
    on_change: Literal["replace", "queue"] = "replace"
    allowed_hardware: list[str] | None = None
    allowed_providers: (
        list[Literal["local", "replicate", "huggingface", "ray", "sagemaker"]] | None
    ) = None
    max_cost_usd_per_job: Annotated[float, Field(gt=0)] | None = None
    monthly_budget_usd: Annotated[float, Field(gt=0)] | None = None
    max_concurrent_runs: Annotated[int, Field(ge=1), INTEGRAL] | None = None
    # DESIGN §20: `apply --github` compares each submission with the reviewed plan of the pull
    # request the commit came from; `warn` lists what no reviewed plan showed, `block` holds it.
    require_reviewed_plan: Literal["warn", "block"] = "warn"


def _over_default_prices(prices: dict[str, float]) -> dict[str, float]:
    # trainops.yaml overrides prices per hardware: setting one must not unprice the others.
    return {**DEFAULT_PRICES, **prices}


class GitHubConfig(CoreModel):
    status_context: str = "trainops"


JobsPattern = Annotated[
    str,
    Field(max_length=PATH_MAX, json_schema_extra={"pattern": SCHEMA_INSIDE}),
    AfterValidator(lambda p: inside(_JOBS_RULE, p)),
]
DEFAULT_JOBS = ("jobs/**/*.yaml", "jobs/**/*.yml")  # DESIGN §1: both extensions count


class Config(CoreModel):
    """trainops.yaml: every field has a default, so the file itself is optional."""

    model_config = ConfigDict(
        title="trainops.yaml",
        json_schema_extra={"$id": "https://trainops.dev/schemas/config.v1.json"},
    )

    jobs: list[JobsPattern] = Field(default_factory=lambda: list(DEFAULT_JOBS))
    state: StateConfig = Field(default_factory=StateConfig)
    providers: ProvidersConfig = Field(default_factory=ProvidersConfig)
    policy: Policy = Field(default_factory=Policy)
    prices_usd_per_second: Annotated[
        dict[str, Annotated[float, Field(ge=0)]], AfterValidator(_over_default_prices)
    ] = Field(default_factory=lambda: dict(DEFAULT_PRICES))
    github: GitHubConfig = Field(default_factory=GitHubConfig)

    def credential_names(self) -> list[str]:
        """The credential names this file configures beyond `spec.env`'s own (a provider's
        `token_env`): one list, so a plan's diffs, the plan a reviewer saw and the apply bound
        to it (DESIGN §20) count the same names."""
        return [self.providers.replicate.token_env]

    @model_validator(mode="after")
    def _ray_prices(self) -> Any:
        """The Ray hardware table's prices join `prices_usd_per_second` (per hour / 3600), so
        estimates, budgets and `cost` price Ray runs as any other. A name priced twice
        differently is an error: one hardware name, one price."""
        merged = dict(self.prices_usd_per_second)
        for name, entry in sorted(self.providers.ray.hardware.items()):
            if entry.price_per_hour is None:
                continue
            per_second = round(entry.price_per_hour / 3600, 12)
            if name in merged and abs(merged[name] - per_second) > 1e-12:
                raise ValueError(
                    f"providers.ray.hardware.{name}: {name!r} already has a price "
                    f"({merged[name]} USD/s in prices_usd_per_second or the built-in table); "
                    "give the Ray hardware a name of its own (e.g. ray-" + name + ")"
                )
            merged[name] = per_second
        object.__setattr__(self, "prices_usd_per_second", merged)  # frozen: set once, here
        return self
