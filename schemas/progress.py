"""`crisis.follow.progress`: what each follower has done, file by file.

A follower (`crisismon follow`) records every file it has finished with here, after Kafka has
acknowledged the file's records, so a restarted follower neither skips a file nor plays one
again. The topic is compacted on `FollowedFile.key`: the latest word on each file is kept.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from schemas.events import StrictModel


class FileOutcome(StrEnum):
    PRODUCED = "produced"
    """Its records are on `crisis.events` (its bad rows reported, not produced)."""
    FAILED = "failed"
    """It could not be fetched or read after every try: reported and skipped."""


class FollowedFile(StrictModel):
    """One file a follower has finished with, and how."""

    model_config = StrictModel.model_config | {
        "json_schema_extra": {
            "examples": [
                {
                    "source": "gdelt http://data.gdeltproject.org/gdeltv2/",
                    "file": "20181126121500.export.CSV.zip",
                    "outcome": "produced",
                    "rows": 1432,
                    "records": 96,
                    "bad_rows": 0,
                    "reason": None,
                    "finished_at": "2018-11-26T12:16:04Z",
                }
            ]
        }
    }

    source: str = Field(min_length=1, max_length=500, description="what the follower follows")
    file: str = Field(min_length=1, max_length=500, description="the file's name within the source")
    outcome: FileOutcome
    rows: int = Field(default=0, ge=0, description="rows read")
    records: int = Field(default=0, ge=0, description="records produced to crisis.events")
    bad_rows: int = Field(default=0, ge=0, description="rows reported as unreadable and skipped")
    reason: str | None = Field(default=None, max_length=2000, description="why it failed")
    finished_at: datetime = Field(description="the follower's clock when it was done (not event time)")

    @property
    def key(self) -> str:
        """The topic's key: one latest record per file of a source."""
        return f"{self.source}|{self.file}"
