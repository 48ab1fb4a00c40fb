"""The exception tree: every Klimapuls error derives from `KlimapulsError`."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ConfigurationError",
    "EventValidationError",
    "FieldIssue",
    "KlimapulsError",
    "RetryableError",
]


class KlimapulsError(Exception):
    """Root of all Klimapuls errors."""


class ConfigurationError(KlimapulsError):
    """A setting is missing or malformed; the process cannot start."""


class RetryableError(KlimapulsError):
    """A transient failure (database or broker unreachable).

    Services retry the whole batch with back-off and never acknowledge the
    events meanwhile, so nothing is lost and nothing is dead-lettered.
    """


@dataclass(frozen=True)
class FieldIssue:
    """One reason an event was rejected, tied to the field it concerns."""

    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.field}: {self.reason}"


class EventValidationError(KlimapulsError):
    """An event broke its schema or a domain rule.

    Bad messages are never retried: services send them to the dead-letter
    topic with `issues` as the reason and move on.
    """

    def __init__(self, issues: list[FieldIssue]) -> None:
        self.issues = issues
        super().__init__("; ".join(str(i) for i in issues))

    @property
    def field(self) -> str:
        """The field of the first issue (`$` for the event as a whole)."""
        return self.issues[0].field if self.issues else "$"
