"""trainops: GitOps for ML training runs.

Training jobs are YAML manifests in git; trainops validates them, plans what must change, and
submits or cancels runs so the providers match git, never launching the same training twice.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
