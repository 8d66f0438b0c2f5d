"""Delivery of trained outputs to where teams use them (Hugging Face Hub, S3), DESIGN §10.

`deliver(target, job, run)` gathers a succeeded run's outputs (`bundle.py`) and hands them to the
module of the target's kind. Every target is idempotent by content hash: it asks what the target
holds and writes only the files that are missing or differ, so a repeated delivery writes nothing
and a retry after a partial failure writes only what is missing. Credentials come from the
environment only, and no error message carries one.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from trainops.delivery.base import MANIFEST, Bundle, DeliveryError, Tally
from trainops.delivery.bundle import gather
from trainops.manifest import DeliverTarget
from trainops.scrub import scrub
from trainops.state.model import Run

__all__ = ["MANIFEST", "DeliveryError", "Tally", "deliver"]


def _s3(target: DeliverTarget, bundle: Bundle, locate: bool) -> Tally:
    from trainops.delivery import s3

    assert target.s3 is not None
    return s3.deliver(target.s3, bundle)


def _huggingface(target: DeliverTarget, bundle: Bundle, locate: bool) -> Tally:
    from trainops.delivery import huggingface

    assert target.huggingface is not None
    return huggingface.deliver(target.huggingface, bundle, locate=locate)


# The kind of a target is the field of `DeliverTarget` that is set; its module loads on first use.
TARGETS: dict[str, Callable[[DeliverTarget, Bundle, bool], Tally]] = {
    "huggingface": _huggingface,
    "s3": _s3,
}


def deliver(
    target: DeliverTarget,
    job: str,
    run: Run,
    folder: Path | None = None,
    digests: dict[str, str] | None = None,
    prefix: str | None = None,
    where: dict[str, str] | None = None,
) -> str:
    """Copy `run`'s outputs to `target`; return a one-line summary. Idempotent: files the target
    already holds with the same content are not written again. Local files are read only inside
    `folder`, the run's own output folder (None: its provider has none), and s3:// outputs only
    under `prefix`, the run's own output prefix. With `where`, records where the files now are
    (the Hub commit, the S3 prefix) under the target's key, for promotion and trace. Raises
    `DeliveryError`."""
    kind = next((k for k in TARGETS if getattr(target, k, None) is not None), None)
    if kind is None:
        raise DeliveryError(f"{job}: delivery target {target.key} has no known kind")
    try:
        with gather(job, run, folder, prefix) as bundle:
            if digests is not None:  # what the delivery manifest records, for trace/checkout
                digests.update({f.name: f.sha256 for f in bundle.files if f.name != MANIFEST})
            tally = TARGETS[kind](target, bundle, where is not None)
            if where is not None and tally.where:
                where[target.key] = tally.where
            return tally.summary()
    except DeliveryError as exc:
        raise DeliveryError(scrub(exc.message), scrub(exc.hint)) from None
    except Exception as exc:
        # A client library failing in a way not mapped above must not wedge every later apply
        # (the delivery is retried each time): it becomes this target's recorded failure.
        raise DeliveryError(
            scrub(f"{job}: delivery to {target.key} failed: {type(exc).__name__}: {exc}")
        ) from None
