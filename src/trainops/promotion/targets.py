"""Moving one alias to one run (apply's promotion step). Each kind reads where its alias points
first and writes only when it points elsewhere, so a move repeated after a crash, or by a racing
reconciler, changes nothing the second time. Failures are `PromotionError`: recorded on the
run and tried again by the next apply.
"""

from __future__ import annotations

from typing import Any

from trainops.errors import ProviderError
from trainops.manifest import AnySpec, PromoteTarget
from trainops.promotion.base import PromotionError
from trainops.promotion.gate import DONE, source, source_key
from trainops.scrub import scrub
from trainops.state.model import Run


def move(target: PromoteTarget, spec: AnySpec, job: str, run: Run, provider: Any) -> str:
    """Point `target` at `run`; return a one-line summary. `provider` is the run's provider
    (a Replicate deployment moves through it). Raises `PromotionError`."""
    try:
        if target.huggingface is not None:
            from trainops.promotion import hub

            # A commit the run's delivery recorded must be one it wrote for this run; a Hugging
            # Face job's own push (gate.own_commit) comes from the observed run instead.
            key = source_key(spec, target)
            delivered = run.deliveries.get(key) == DONE and bool(run.delivered.get(key))
            commit = source(spec, target, run, job)
            return hub.move(target.huggingface, commit, job, run, delivered)
        if target.s3 is not None:
            from trainops.promotion import s3

            return s3.move(target.s3, source(spec, target, run, job), run)
        assert target.replicate is not None
        from trainops.providers.base import Deploys

        if not isinstance(provider, Deploys):
            raise PromotionError(
                f"{job}: the {run.provider} provider has no deployments to promote to"
            )
        return provider.deploy(target.replicate.deployment, source(spec, target, run, job))
    except PromotionError as exc:
        raise PromotionError(scrub(exc.message), scrub(exc.hint)) from None
    except ProviderError as exc:
        raise PromotionError(scrub(exc.message), scrub(exc.hint)) from None
    except Exception as exc:
        # A client failing in a way not mapped must not wedge every later apply.
        raise PromotionError(
            scrub(f"{job}: promotion to {target.key} failed: {type(exc).__name__}: {exc}")
        ) from None


__all__ = ["PromotionError", "move"]
