"""The `CreateTrainingJob` request of a submission: the algorithm or image, the role, the
input as `HyperParameters` and S3 channels (`trainops.hyperparameters`), the output folder,
instances, the stopping condition, the ownership tags, the VPC and managed spot."""

from __future__ import annotations

from typing import Any

from trainops.hyperparameters import convert
from trainops.manifest import SageMakerConfig, SageMakerSpec
from trainops.providers.base import Submission
from trainops.providers.sagemaker.names import submission_tags


def training_request(config: SageMakerConfig, name: str, submission: Submission) -> dict[str, Any]:
    """The request that creates the training job `name` for `submission`."""
    spec = submission.job.spec
    assert isinstance(spec, SageMakerSpec)
    params, channels = convert(submission.input)
    algorithm: dict[str, Any] = {"TrainingInputMode": "File"}
    if spec.image:
        algorithm["TrainingImage"] = spec.image
    else:
        algorithm["AlgorithmName"] = spec.algorithm
    runtime = spec.budget.max_duration or config.default_timeout
    stopping: dict[str, Any] = {"MaxRuntimeInSeconds": runtime}
    request: dict[str, Any] = {
        "TrainingJobName": name,
        "AlgorithmSpecification": algorithm,
        "RoleArn": config.role_arn,
        "HyperParameters": params,
        "OutputDataConfig": {"S3OutputPath": config.output_uri},
        "ResourceConfig": {
            "InstanceType": spec.hardware,
            "InstanceCount": spec.instance_count,
            "VolumeSizeInGB": config.volume_gb,
        },
        "StoppingCondition": stopping,
        "Tags": [{"Key": k, "Value": v} for k, v in submission_tags(submission).items()],
    }
    if channels:
        request["InputDataConfig"] = [
            {
                "ChannelName": key,
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": uri,
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
            }
            for key, uri in channels.items()
        ]
    if config.vpc is not None:
        request["VpcConfig"] = {
            "Subnets": list(config.vpc.subnets),
            "SecurityGroupIds": list(config.vpc.security_group_ids),
        }
    if config.spot is not None:
        request["EnableManagedSpotTraining"] = True
        stopping["MaxWaitTimeInSeconds"] = max(config.spot.max_wait, runtime)
    return request
