"""A run's alerts, in play order and by dyad, in flat memory however many a run raises.

The timeline and the report list every alert, grouped by dyad, once the run is over; a long
run over a busy source raises them by the hundred thousand. Up to IN_MEMORY alerts are held
as they are; past that, all of them go to a temporary file (JSON Lines) and are read back,
one dyad at a time, when asked for. What stays in memory is where each alert is.
"""

from __future__ import annotations

import tempfile
import weakref
from array import array
from collections.abc import Iterator
from typing import IO

from schemas.outputs import Alert

IN_MEMORY = 2_000
"""Some 6 kB each as models, with their five contributors (measured): 12 MB at most."""


class AlertArchive:
    """Alerts in the order they were added: all of them (`iter`), or a dyad's (`of`)."""

    def __init__(self) -> None:
        self._held: list[Alert] = []
        self._spill: IO[bytes] | None = None
        self._end = 0
        self._where: dict[str, array[int]] = {}
        """Per dyad, its alerts' places: indices into `_held`, or once spilled, offsets in the file."""

    def add(self, alert: Alert) -> None:
        if self._spill is not None:
            self._where.setdefault(alert.dyad, array("q")).append(self._write(self._spill, alert))
            return
        self._where.setdefault(alert.dyad, array("q")).append(len(self._held))
        self._held.append(alert)
        if len(self._held) > IN_MEMORY:
            self._spill_held()

    def __len__(self) -> int:
        return sum(len(places) for places in self._where.values())

    def __iter__(self) -> Iterator[Alert]:
        if self._spill is None:
            yield from self._held
            return
        offset = 0
        while offset < self._end:
            line = self._read(self._spill, offset)
            offset += len(line)
            yield Alert.model_validate_json(line)

    def count(self, dyad: str) -> int:
        return len(self._where.get(dyad, ()))

    def of(self, dyad: str) -> list[Alert]:
        """The dyad's alerts in order, read back from the file once spilled."""
        places = self._where.get(dyad, array("q"))
        if self._spill is None:
            return [self._held[at] for at in places]
        spill = self._spill
        return [Alert.model_validate_json(self._read(spill, offset)) for offset in places]

    def _spill_held(self) -> None:
        spill = self._spill = tempfile.TemporaryFile(prefix="crisismon-alerts-")  # noqa: SIM115
        weakref.finalize(self, spill.close)  # the file goes with the archive
        offsets = [self._write(spill, alert) for alert in self._held]
        self._where = {
            dyad: array("q", (offsets[at] for at in places)) for dyad, places in self._where.items()
        }
        self._held = []

    def _write(self, spill: IO[bytes], alert: Alert) -> int:
        """Appends the alert; its offset. A read in between moved the file's position."""
        if spill.tell() != self._end:
            spill.seek(self._end)
        offset = self._end
        line = alert.model_dump_json().encode() + b"\n"
        spill.write(line)
        self._end += len(line)
        return offset

    @staticmethod
    def _read(spill: IO[bytes], offset: int) -> bytes:
        spill.seek(offset)
        return spill.readline()
