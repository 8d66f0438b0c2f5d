"""What every delivery target works with (the targets depend on this module, not on each other
or on `bundle`): the files of one delivery, what a target did, and its error."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from trainops.errors import ProviderError

MANIFEST = "trainops.json"


class DeliveryError(ProviderError):
    """A delivery target refused or failed; the next apply retries the delivery."""


@dataclass(frozen=True)
class File:
    """One file to deliver. `name` is its path in the target, relative to the target's folder."""

    name: str
    path: Path
    size: int
    sha256: str
    git_sha1: str  # the git blob id: sha1 of b"blob <size>\0" + content (the Hub's regular oid)


@dataclass(frozen=True)
class Bundle:
    job: str
    revision: str
    run_id: str
    files: tuple[File, ...]  # output files first, the manifest last

    @property
    def manifest(self) -> File:
        return self.files[-1]


@dataclass(frozen=True)
class Tally:
    """What one delivery did, file by file."""

    written: tuple[str, ...] = ()
    present: tuple[str, ...] = ()
    where: str = ""  # where the files are now: the Hub commit, the S3 prefix ("" unknown)

    def summary(self) -> str:
        total = len(self.written) + len(self.present)
        noun = "file" if total == 1 else "files"
        return f"{total} {noun}: {len(self.written)} written, {len(self.present)} already present"


__all__ = ["MANIFEST", "Bundle", "DeliveryError", "File", "Tally"]
