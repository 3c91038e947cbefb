"""Event times as float seconds since the epoch (UTC), the unit the core computes in."""

from datetime import UTC, datetime, timedelta

from services.core.config import format_duration


def to_seconds(moment: datetime) -> float:
    return moment.timestamp()


def from_seconds(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def reference_time(produced_at: float | None, now: float) -> datetime:
    """What a log record's event time is checked against for lying in the future: its Kafka
    timestamp (seconds), so that reading the log again later decides the same, but never past
    the clock `now`, so that a timestamp that lies too cannot let it in. None or <= 0: `now`."""
    return from_seconds(min(produced_at, now) if produced_at and produced_at > 0 else now)


def too_far_ahead(event_time: datetime, reference: datetime, max_skew: timedelta) -> str | None:
    """Why an event time is refused as lying in the future, or None.

    A dyad's lateness counts back from its latest event, so one event dated years ahead
    would expire every real event that follows. The caller picks the reference (a clock, or
    a Kafka record's timestamp): the core reads no clock.
    """
    if event_time <= reference + max_skew:
        return None
    return (
        f"event_time: {event_time:%Y-%m-%dT%H:%M:%SZ} is more than {format_duration(max_skew)}"
        f" ahead of {reference:%Y-%m-%dT%H:%M:%SZ} (max_future_skew)"
    )
