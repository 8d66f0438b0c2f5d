"""The error family of trainops and the exit codes of DESIGN §12.

Every failure a user can cause or meet is a `TrainopsError`; the CLI maps it to an exit code in one
place and prints it without a traceback (unless `--debug`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

EXIT_OK = 0
EXIT_INVALID = 1  # invalid manifests or policy refusal
EXIT_USAGE = 2
EXIT_PROVIDER = 3  # provider or infrastructure error after retries
EXIT_CHANGES = 4  # `plan --detailed-exitcode` when the plan has actions


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with the user's input, located as precisely as we can."""

    file: str
    line: int = 0  # 1-based; 0 when the fault has no line
    col: int = 0  # 1-based; 0 when the fault has no column
    message: str = ""
    hint: str = ""
    job: str = field(default="", compare=False)

    def location(self) -> str:
        if self.line and self.col:
            return f"{self.file}:{self.line}:{self.col}"
        if self.line:
            return f"{self.file}:{self.line}"
        return self.file

    def __str__(self) -> str:
        text = f"{self.location()}: {self.message}"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


class TrainopsError(Exception):
    """Base of every error trainops reports to a user. `exit_code` follows DESIGN §12."""

    exit_code = EXIT_INVALID

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message + (f"\n  hint: {self.hint}" if self.hint else "")


class InvalidInput(TrainopsError):
    """Manifests, config or lock file do not validate. Carries every problem found."""

    exit_code = EXIT_INVALID

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems)
        super().__init__(f"{len(self.problems)} problem(s) found")


class UsageError(TrainopsError):
    exit_code = EXIT_USAGE


class ProviderError(TrainopsError):
    """A provider or infrastructure call failed after retries."""

    exit_code = EXIT_PROVIDER


class StateError(TrainopsError):
    exit_code = EXIT_PROVIDER


class StateSetupError(StateError):
    """The state backend cannot work where it was pointed (no git repository): the user's setup,
    not an outage, so a usage error."""

    exit_code = EXIT_USAGE


class StateConflict(StateError):
    """The compare-and-swap of §8 was lost: another reconciler moved the state first."""


class OutcomeUnknown(ProviderError):
    """A create request may or may not have reached the provider (timeout after sending, dropped
    connection). Never retried blindly: the next pass adopts the run through `Provider.find`."""
