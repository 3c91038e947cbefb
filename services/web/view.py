"""The API's live view: the projection of the topics, the stream of changes to it, and how far
it has read. The Kafka feed (`services.kafka.feed`) hands it records; the web app reads it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial

from pydantic import ValidationError

from schemas.events import parse_record
from schemas.outputs import Alert, IndexUpdate
from schemas.topics import RecordKind
from schemas.validation import describe
from services.core.timeutil import reference_time, too_far_ahead
from services.web.projection import KeptEvent, Projection
from services.web.stream import Broadcaster

log = logging.getLogger(__name__)


@dataclass
class View:
    projection: Projection
    broadcaster: Broadcaster = field(default_factory=Broadcaster)
    max_future_skew: timedelta = timedelta(days=1)
    records_read: int = 0
    caught_up: bool = False
    """True once the view has read the topics up to where they ended when it started."""

    def ingest(self, kind: RecordKind, value: bytes, produced_at: float | None = None) -> None:
        """Into the view, or skipped with a log line: what the worker refused (it sent it to
        the dead-letter topic, by the same rules) and anything else unreadable."""
        self.records_read += 1
        try:
            if kind == "index":
                update = IndexUpdate.model_validate_json(value)
                self.projection.add_index(update, value)
                self.broadcaster.publish("index", update.model_dump_json)
            elif kind == "alert":
                alert = Alert.model_validate_json(value)
                if self.projection.add_alert(alert, value):
                    self.broadcaster.publish("alert", alert.model_dump_json)
            else:
                record = parse_record(value)
                reference = reference_time(produced_at, time.time())
                if refusal := too_far_ahead(record.event_time, reference, self.max_future_skew):
                    raise ValueError(refusal)
                kept = self.projection.add_record(record, value)
                if kept is not None:
                    self.broadcaster.publish("event", partial(self._event_json, kept))
        except (ValidationError, ValueError) as error:
            log.info("API view skips a record of %s: %s", kind, describe(error))
        except Exception:  # a bug of ours must cost one record, not the view
            log.exception("API view skips a record of %s it failed on", kind)

    def _event_json(self, kept: KeptEvent) -> str:
        """An event's message on /api/stream, written when a client first needs it."""
        return self.projection.detail(kept).model_dump_json()
