"""The API's view of the topics: what `crisis.events`, `crisis.index` and `crisis.alerts` say.

Every worker builds the whole view from the topics (all partitions), so any worker answers
for every dyad, however the partitions are shared out. Pure: no I/O, no clock; the Kafka
feed (`services.kafka.feed`) puts records in, the web app asks questions. Memory is bounded
by settings: the events and alerts kept for lookup, and the index updates kept per dyad and in
all. What is kept is held as JSON (as read from the topic, not written again: see `_as_kept`),
beside what queries sort and filter by, and read back into models only for an answer: an
event's pydantic model took 4 KiB where its JSON takes 0.4 (README, "The worker's memory on
long runs"). An event's details (what its code means, how it scored) are added when asked.

A dyad's curve is the core's (services.core.curve), sampled here from the updates as they came,
so that the dashboard draws what the backtest's report draws and never computes one itself.
"""

from __future__ import annotations

import math
import sys
import zlib
from bisect import bisect_right
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import groupby
from typing import NamedTuple

from pydantic import BaseModel

from schemas.cameo import GoldsteinScale, cameo_codes, goldstein_scale
from schemas.events import CrisisEvent, Retraction, corroborated, witnessed_weight
from schemas.outputs import Alert, IndexUpdate, Level
from services.core.curve import AnchorTrail, Curve, sample
from services.core.scoring import goldstein_of
from services.core.timeutil import to_seconds
from services.web.models import DyadCurve, DyadSummary, EventDetail
from services.web.paging import page

KEPT_AS_READ_BYTES = 4096
"""A record's JSON up to this size is kept as read (the view's are under 1 KiB, mostly); a
longer one is written again, compact, so that whitespace cannot make the kept records weigh
more than their fields can."""


def _as_kept(model: BaseModel, json: bytes | None) -> bytes:
    """What the view keeps of a record: its JSON as read, unless it is missing or too long."""
    if json is not None and len(json) <= KEPT_AS_READ_BYTES:
        return json
    return model.model_dump_json().encode()


def as_utc(moment: datetime) -> datetime:
    """Query times without a zone are taken as UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


class KeptEvent(NamedTuple):
    event_time: datetime
    """In UTC (one shared zone, where a parsed time holds a zone object of its own)."""
    event_id: str
    dyad: str | None
    json: bytes
    """The event's JSON as read (or as corroborated since): its `EventDetail` is built from it
    when asked, since most events kept are never asked for."""
    retracted_by: bytes | None = None
    """The retraction's JSON, as kept (`_as_kept`): a retracted event weighs no more than two."""

    @classmethod
    def of(cls, event: CrisisEvent, json: bytes, retracted_by: bytes | None) -> KeptEvent:
        return cls(event.event_time.astimezone(UTC), event.event_id, event.dyad, json, retracted_by)


class KeptAlert(NamedTuple):
    event_time: datetime
    """In UTC, as `KeptEvent.event_time`."""
    alert_id: str
    dyad: str
    reach: int
    """`Alert.reach`: what `min_level` filters by."""
    compressed: bytes
    """The alert's JSON, zlib-compressed: an alert's is 1.2 KiB on average, 0.5 compressed, and
    alerts are few (about one per fifteen events), so the cost is small where the saving is not."""

    @classmethod
    def of(cls, alert: Alert, json: bytes) -> KeptAlert:
        return cls(
            alert.event_time.astimezone(UTC), alert.alert_id, alert.dyad, alert.reach, zlib.compress(json)
        )

    def alert(self) -> Alert:
        return Alert.model_validate_json(zlib.decompress(self.compressed))


class KeptUpdate(NamedTuple):
    as_of: datetime
    """In UTC, as `KeptEvent.event_time`."""
    json: bytes

    def update(self) -> IndexUpdate:
        return IndexUpdate.model_validate_json(self.json)


@dataclass
class DyadView:
    latest: IndexUpdate
    history: OrderedDict[str, KeptUpdate] = field(default_factory=OrderedDict)
    """By the record that triggered the update: a repeated update replaces the first."""
    trail: AnchorTrail = field(default_factory=AnchorTrail)
    """Where the curve jumps, from the updates in the order they came: per dyad, the index topic
    keeps the engine's processing order. A repeated update replaces the last anchor, the same."""
    truncated: bool = False

    def keep_latest(self, count: int) -> int:
        """Let go of all but the latest `count` updates (and about as many anchors of the curve);
        how many updates went."""
        gone = max(len(self.history) - count, 0)
        for _ in range(gone):
            self.history.popitem(last=False)
        if len(self.trail) > count * 5 // 4:
            # In batches, so that a busy dyad does not copy its trail at every update.
            self.trail = _latest_anchors(self.trail, count)
        self.truncated |= gone > 0
        return gone


@dataclass
class Projection:
    max_events: int
    """Events kept for lookup, and alerts: the most recent ones."""
    history_per_dyad: int
    max_updates: int = sys.maxsize
    """Index updates kept over all dyads: past it, the dyads holding the most give up their
    oldest (`_share_updates`), so that memory stays bounded however many dyads there are (at
    one update per dyad, its latest, past that)."""
    scale: GoldsteinScale = field(default_factory=goldstein_scale)
    """The worker's scale, to show each event's score as the engine took it."""
    dyads: dict[str, DyadView] = field(default_factory=dict)
    alerts: OrderedDict[str, KeptAlert] = field(default_factory=OrderedDict)
    events: OrderedDict[str, KeptEvent] = field(default_factory=OrderedDict)
    pending_retractions: dict[str, bytes] = field(default_factory=dict)
    """Retractions read before their event, by the event's id: their JSON, as kept."""
    alert_counts: Counter[str] = field(default_factory=Counter)
    last_alerts: dict[str, Alert] = field(default_factory=dict)
    """Per dyad; kept apart from `dyads` because an alert may be read before its index update."""
    latest_event_time: float = -math.inf
    """Seconds: the latest event time of any dyad's change, where curves end unless asked."""
    updates_kept: int = field(default=0, init=False)
    per_dyad: int = field(init=False)
    """The updates a dyad may keep now: `history_per_dyad`, less once `max_updates` was reached."""

    def __post_init__(self) -> None:
        self.per_dyad = self.history_per_dyad

    def add_index(self, update: IndexUpdate, json: bytes | None = None) -> None:
        """`json`: the update as read, kept as it is (else written again from `update`)."""
        view = self.dyads.get(update.dyad)
        if view is None:
            view = self.dyads[update.dyad] = DyadView(update)
        elif update.as_of >= view.latest.as_of:
            view.latest = update
        replaced = view.history.pop(update.triggered_by, None)
        view.history[update.triggered_by] = KeptUpdate(update.as_of.astimezone(UTC), _as_kept(update, json))
        self.updates_kept += replaced is None
        as_of = to_seconds(update.as_of)
        # Updates published before `triggered_at` existed are placed at their `as_of`.
        caused_at = to_seconds(update.triggered_at) if update.triggered_at else as_of
        view.trail.add(
            as_of, caused_at, update.escalation_index, update.de_escalation_index, update.escalation_baseline
        )
        self.updates_kept -= view.keep_latest(self.per_dyad)
        if self.updates_kept > self.max_updates and self.per_dyad > 1:
            self._share_updates()
        self.latest_event_time = max(self.latest_event_time, as_of, caused_at)

    def _share_updates(self) -> None:
        """Bring the updates kept down to nine tenths of `max_updates` (in batches, not at every
        update) by cutting the dyads that hold the most to one cap, the largest that does it: a
        quiet dyad keeps its whole history, a busy one its latest. New dyads come in under the
        same cap."""
        self.per_dyad = min(
            self.per_dyad,
            _fair_cap([len(view.history) for view in self.dyads.values()], self.max_updates * 9 // 10),
        )
        for view in self.dyads.values():
            self.updates_kept -= view.keep_latest(self.per_dyad)

    def add_alert(self, alert: Alert, json: bytes | None = None) -> bool:
        """False for a repeat (a restarted worker may publish an alert again, with its id).
        `json`: the alert as read, kept as it is (else written again from `alert`)."""
        if alert.alert_id in self.alerts:
            return False
        self.alerts[alert.alert_id] = KeptAlert.of(alert, _as_kept(alert, json))
        if len(self.alerts) > self.max_events:
            self.alerts.popitem(last=False)
        self.alert_counts[alert.dyad] += 1
        last = self.last_alerts.get(alert.dyad)
        if last is None or alert.event_time >= last.event_time:
            self.last_alerts[alert.dyad] = alert
        return True

    def event(self, event_id: str) -> EventDetail | None:
        """The event as the API shows it, if kept."""
        kept = self.events.get(event_id)
        return None if kept is None else self.detail(kept)

    def add_record(self, record: CrisisEvent | Retraction, json: bytes | None = None) -> KeptEvent | None:
        """The event as kept now, or None when nothing visible changed. `json`: the record as
        read, kept as it is (else written again from `record`)."""
        if isinstance(record, Retraction):
            retraction, target = _as_kept(record, json), self.events.get(record.retracts)
            if target is None:
                self.pending_retractions[record.retracts] = retraction
                if len(self.pending_retractions) > self.max_events:
                    del self.pending_retractions[next(iter(self.pending_retractions))]
                return None
            marked = self.events[record.retracts] = target._replace(retracted_by=retraction)
            return marked
        known = self.events.get(record.event_id)
        if known is not None:
            return self._corroborated(known, record)
        kept = KeptEvent.of(
            record, _as_kept(record, json), self.pending_retractions.pop(record.event_id, None)
        )
        self.events[record.event_id] = kept
        if len(self.events) > self.max_events:
            self.events.popitem(last=False)
        return kept

    def _corroborated(self, known: KeptEvent, record: CrisisEvent) -> KeptEvent | None:
        """A held event with the rows a later record adds (as the engine adds them), or None when
        the record names none it has not (a duplicate, or a native copy)."""
        if known.retracted_by is not None:
            return None  # as the engine: a retracted event stays out
        held = CrisisEvent.model_validate_json(known.json)
        if held.event_time != record.event_time:
            return None  # as the engine: a conflicting copy is ignored
        together = corroborated(held.witnesses, record.witnesses)
        if together is None:
            return None
        event = held.model_copy(update={"witnesses": together, "weight": witnessed_weight(together)})
        changed = self.events[event.event_id] = known._replace(json=event.model_dump_json().encode())
        return changed

    def detail(self, kept: KeptEvent) -> EventDetail:
        """The event as the API shows it: with its dyad, what its code means and how it scored
        (built when asked: most events kept never are)."""
        event, retraction = CrisisEvent.model_validate_json(kept.json), kept.retracted_by
        goldstein = goldstein_of(event, self.scale)
        code = cameo_codes().get(event.cameo_code)
        return EventDetail(
            event=event,
            dyad=event.dyad,
            retracted_by=None if retraction is None else Retraction.model_validate_json(retraction),
            cameo_description=code.description if code else None,
            goldstein=goldstein,
            feeds="escalation" if goldstein < 0 else "de-escalation" if goldstein > 0 else "neither",
        )

    # Questions

    def summaries(self) -> list[DyadSummary]:
        rows = [
            DyadSummary(
                dyad=dyad,
                escalation_index=view.latest.escalation_index,
                de_escalation_index=view.latest.de_escalation_index,
                level=view.latest.level,
                escalation_baseline=view.latest.escalation_baseline,
                crisis_since=view.latest.crisis_since,
                as_of=view.latest.as_of,
                last_change=last_alert.event_time if last_alert else None,
                last_alert=last_alert,
                alerts=self.alert_counts[dyad],
            )
            for dyad, view in self.dyads.items()
            for last_alert in [self.last_alerts.get(dyad)]
        ]
        return sorted(rows, key=lambda row: (-row.level.rank, -row.escalation_index, row.dyad))

    def history(
        self, dyad: str, start: datetime | None, end: datetime | None
    ) -> tuple[list[IndexUpdate], bool] | None:
        view = self.dyads.get(dyad)
        if view is None:
            return None
        kept = sorted(view.history.values(), key=lambda update: update.as_of)
        return [u.update() for u in kept if _within(u.as_of, start, end)], view.truncated

    def curve(
        self, dyad: str, start: datetime | None, end: datetime | None, points: int, half_life: float
    ) -> DyadCurve | None:
        """The dyad's E and D, and the baseline E was judged against, from `start` to `end`
        (default: its first change, the latest event time seen), at most `points` samples.
        None: no update of this dyad yet."""
        view = self.dyads.get(dyad)
        if view is None:
            return None
        since = to_seconds(as_utc(start)) if start else -math.inf
        until = to_seconds(as_utc(end)) if end else self.latest_event_time
        anchors = view.trail.anchors
        shown = [anchor.shown_at for anchor in anchors]
        # From the last jump before the window, whose decay runs into it, to the last within it.
        first = max(bisect_right(shown, since) - 1, 0)
        window = anchors[first : bisect_right(shown, until)]
        sampled = sample(window, half_life, until) or Curve([], [], [], [])
        kept = _thinned(
            sampled, [i for i, time in enumerate(sampled.times) if since <= time <= until], points
        )
        return DyadCurve(
            dyad=dyad,
            times=[sampled.times[i] for i in kept],
            escalation=[sampled.escalation[i] for i in kept],
            de_escalation=[sampled.de_escalation[i] for i in kept],
            escalation_baseline=[sampled.escalation_baseline[i] for i in kept],
            truncated=view.truncated,
        )

    def find_alerts(
        self,
        dyad: str | None,
        min_level: Level | None,
        since: datetime | None,
        limit: int,
        cursor: str | None = None,
    ) -> tuple[list[Alert], str | None]:
        """A page of the alerts kept, newest first, and the cursor of the next (see paging.py)."""
        found = (
            alert
            for alert in self.alerts.values()
            if (dyad is None or alert.dyad == dyad)
            and (min_level is None or alert.reach >= min_level.rank)
            and _within(alert.event_time, since, None)
        )
        kept, following = page(found, lambda alert: (alert.event_time, alert.alert_id), cursor, limit)
        return [alert.alert() for alert in kept], following

    def find_events(
        self, dyad: str | None, limit: int, cursor: str | None = None
    ) -> tuple[list[EventDetail], str | None]:
        """A page of the events kept, newest first, and the cursor of the next (see paging.py)."""
        found = (kept for kept in self.events.values() if dyad is None or kept.dyad == dyad)
        kept, following = page(found, lambda event: (event.event_time, event.event_id), cursor, limit)
        return [self.detail(event) for event in kept], following


def _latest_anchors(trail: AnchorTrail, count: int) -> AnchorTrail:
    """The trail's last `count` anchors as a trail of their own: each added again where it was
    shown, which is past its `as_of` and past the one before, so it stays where it was."""
    kept = AnchorTrail()
    for anchor in trail.anchors[-count:]:
        kept.add(
            anchor.as_of, anchor.shown_at, anchor.escalation, anchor.de_escalation, anchor.escalation_baseline
        )
    return kept


def _fair_cap(lengths: list[int], budget: int) -> int:
    """The largest cap (at least 1) under which the lengths, each cut to it, add up to `budget`
    or less."""
    left, count = budget, len(lengths)
    for length in sorted(lengths):
        if length * count > left:  # this one and every longer one are cut to the same cap
            return max(left // count, 1)
        left -= length
        count -= 1
    return max(lengths, default=1)


def _thinned(curve: Curve, indices: list[int], points: int) -> list[int]:
    """At most `points` of the samples at `indices` (in time order): past that, each of
    `points // 2` equal slices of their time keeps its highest E and its highest D, so a
    thinned curve loses no peak. Every series is read at the same samples, so they stay aligned
    (a step of the baseline shows at the first sample kept after it)."""
    if len(indices) <= points:
        return indices
    slices = points // 2
    start = curve.times[indices[0]]
    width = (curve.times[indices[-1]] - start) / slices or 1.0
    kept: list[int] = []
    for _, members in groupby(indices, lambda i: min(int((curve.times[i] - start) / width), slices - 1)):
        group = list(members)
        highest = {
            max(group, key=curve.escalation.__getitem__),
            max(group, key=curve.de_escalation.__getitem__),
        }
        kept += sorted(highest)
    return kept


def _within(moment: datetime, start: datetime | None, end: datetime | None) -> bool:
    return (start is None or moment >= as_utc(start)) and (end is None or moment <= as_utc(end))
