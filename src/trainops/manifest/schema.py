"""The JSON Schemas in `schemas/`, generated from the models (`trainops schema`; a test checks the
committed files are current)."""

from __future__ import annotations

import json

from trainops.manifest.config import Config
from trainops.manifest.document import TrainingJob


def json_schemas() -> dict[str, str]:
    """The generated JSON Schemas, by file name under `schemas/` (`trainops schema`)."""
    out = {}
    for name, model in (("trainingjob.v1.json", TrainingJob), ("config.v1.json", Config)):
        schema = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            **model.model_json_schema(mode="validation"),
        }
        out[name] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    return out
