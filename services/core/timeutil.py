"""Event times as float seconds since the epoch (UTC), the unit the core computes in."""

from datetime import UTC, datetime


def to_seconds(moment: datetime) -> float:
    return moment.timestamp()


def from_seconds(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)
