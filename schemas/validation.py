"""Validation errors as one line: what a dead letter, a bad row or a CLI error says."""

from __future__ import annotations

from pydantic import ValidationError


def describe(error: ValidationError | ValueError) -> str:
    """A validation error as one line: 'field.path: message; other: message'."""
    if not isinstance(error, ValidationError):
        return (str(error).splitlines() or [type(error).__name__])[0]
    parts = []
    for detail in error.errors(include_url=False):
        location = ".".join(str(part) for part in detail["loc"] if part not in ("event", "retraction"))
        parts.append(f"{location}: {detail['msg']}" if location else detail["msg"])
    return "; ".join(parts)
