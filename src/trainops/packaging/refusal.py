"""What never leaves the machine whatever git holds (DESIGN §13): credential-shaped names
(`refusal_by_name`) and, fed chunk by chunk, content that looks like a credential (`Scanner`: the
scrubber's token shapes, a PEM private key, a JSON `private_key`)."""

from __future__ import annotations

import re

from trainops.scrub import TOKEN_SHAPE

__all__ = ["Scanner", "refusal_by_name"]

_KEY_NAMES = frozenset(
    {"id_rsa", "id_dsa", "id_ecdsa", "id_ed25519", "id_ecdsa_sk", "id_ed25519_sk"}
)
_KEY_SUFFIXES = (".pem", ".key", ".p12", ".pfx", ".ppk", ".jks", ".keystore", ".gpg", ".asc")
_CREDENTIAL_NAMES = frozenset(
    {
        ".netrc",
        "_netrc",
        ".pgpass",
        ".pypirc",
        ".npmrc",
        ".git-credentials",
        ".boto",
        ".s3cfg",
        ".htpasswd",
        ".terraformrc",
        "terraform.rc",
        ".vault-token",
        ".dockercfg",
        "application_default_credentials.json",
        "credentials.db",
        "access_tokens.db",
        "kubeconfig",
    }
)
# Folders whose every file is a credential store: ~/.aws, ~/.ssh, gcloud, kube, docker config.
_CREDENTIAL_DIRS = frozenset(
    {".git", ".aws", ".ssh", ".gnupg", "gcloud", ".kube", ".docker", ".azure"}
)
# What a credential looks like inside a file. The token shapes are the scrubber's own (one list
# for what is masked in output and what never leaves in a package).
_CONTENT = (
    (re.compile(rb'"private_key"\s*:\s*"'), "service account key (content)"),
    (re.compile(rb"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----"), "private key (content)"),
    (re.compile(TOKEN_SHAPE.pattern.encode()), "content looks like a token"),
)
_OVERLAP = 512  # bytes kept from one chunk to the next: a credential cut in two is still seen


def refusal_by_name(rel: str) -> str:
    """Why a file of this repository path must never leave the machine ("" when it may)."""
    parts = rel.split("/")
    name = parts[-1]
    lower = name.lower()
    if any(p.lower() in _CREDENTIAL_DIRS for p in parts[:-1]) or lower == ".git":
        return "credentials or git metadata"
    if lower.startswith(".env") or lower.endswith(".env"):
        return "environment file"
    if (
        lower in _KEY_NAMES
        or lower.endswith(_KEY_SUFFIXES)
        or (lower.startswith("id_") and "." not in lower)  # id_rsa_deploy, id_work: ssh keys
        or lower.startswith("deploy_key")
    ):
        return "private key"
    if ".tfstate" in lower:
        return "terraform state (holds secrets)"
    if (
        lower in _CREDENTIAL_NAMES
        or "credentials" in lower
        or (lower.startswith("gha-creds-") and lower.endswith(".json"))
        or lower.endswith(("-key.json", "_key.json"))
    ):
        return "cloud credentials"
    return ""


class Scanner:
    """Fed a file chunk by chunk: why its content is a credential ("" while it is not)."""

    def __init__(self) -> None:
        self._tail = b""
        self.why = ""

    def feed(self, chunk: bytes) -> str:
        if not self.why:
            text = self._tail + chunk
            for pattern, why in _CONTENT:
                if pattern.search(text):
                    self.why = why
                    break
            self._tail = text[-_OVERLAP:]
        return self.why
