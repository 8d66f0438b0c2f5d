"""Errors of a provider that talks to a service with a token: every message is scrubbed of that
token (besides whatever the one scrubber already masks), and an unknown outcome says how the next
apply finds what the lost call may have created."""

from __future__ import annotations

from trainops.errors import OutcomeUnknown, ProviderError


class TokenScrubbedErrors:
    _token: str = ""
    # How the next apply finds what a call whose answer was lost may have created.
    adoption_hint: str = "the next apply looks for the run it may have created (adoption)"

    def _redact(self, text: str) -> str:
        from trainops.scrub import scrubber

        return scrubber(extra=[self._token])(text)

    def _error(self, message: str, hint: str = "") -> ProviderError:
        return ProviderError(self._redact(message), self._redact(hint))

    def _unknown(self, what: str, reason: str) -> OutcomeUnknown:
        message = self._redact(f"{what}: outcome unknown ({reason})")
        return OutcomeUnknown(message, self.adoption_hint)
