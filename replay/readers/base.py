"""What every reader yields: a record with where it came from, or a bad row with why."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError

from schemas.events import CrisisEvent, Retraction


class InputError(Exception):
    """An input that cannot be read at all (missing file, unknown format): the run stops."""


@dataclass(frozen=True)
class SourceLine:
    path: str
    line: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}"


@dataclass(frozen=True)
class Located:
    where: SourceLine
    record: CrisisEvent | Retraction


@dataclass(frozen=True)
class BadRow:
    where: SourceLine
    reason: str
    raw: str


ReadItem = Located | BadRow


def describe(error: ValidationError | ValueError) -> str:
    """A validation error as one line: 'field.path: message; other: message'."""
    if not isinstance(error, ValidationError):
        return str(error).splitlines()[0]
    parts = []
    for detail in error.errors(include_url=False):
        location = ".".join(str(part) for part in detail["loc"] if part not in ("event", "retraction"))
        parts.append(f"{location}: {detail['msg']}" if location else detail["msg"])
    return "; ".join(parts)
