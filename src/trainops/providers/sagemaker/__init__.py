"""The SageMaker provider (DESIGN §10), a package by noun: `provider` (`SageMakerProvider`, the
protocol's face), `names` (training job names, the ownership tags, `check_run`), `api` (the
boto3 clients, the one retry layer, describe and list), `request` (the `CreateTrainingJob`
request), `observe` (a job's answer as an `Observation`)."""

from trainops.providers.sagemaker.names import check_run, tags_name, training_job_name
from trainops.providers.sagemaker.provider import SageMakerProvider

__all__ = ["SageMakerProvider", "check_run", "tags_name", "training_job_name"]
