"""The crisis library (replay/data/crises/): well-formed, sourced, and scored as pinned.

The golden scores are `scores.json` of
`crisismon backtest replay/data/crises/*.jsonl replay/data/pakistan-iran-2024.jsonl
--labels replay/data/crises --report DIR`. A change in them is a change of behaviour: look
at the new scores, explain the change in the commit, then copy the new file over.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from replay.ordering import ReadReport, read_in_play_order
from schemas.events import CrisisEvent
from services.backtest.labels import label_files, load_labels
from services.backtest.report import scores_json
from services.backtest.run import run_backtest
from services.backtest.scoring import evaluate
from services.core import EngineConfig

ROOT = Path(__file__).parent.parent
LIBRARY = ROOT / "replay" / "data" / "crises"
LABELS = label_files(LIBRARY)
GOLDEN = Path(__file__).parent / "golden" / "library_scores.json"


def events_of(labels_path: Path) -> Path:
    (crisis,) = load_labels([labels_path])
    assert crisis.events is not None
    return (labels_path.parent / crisis.events).resolve()


def library_files() -> list[Path]:
    return [events_of(path) for path in LABELS]


def test_the_library_holds_the_crises_the_issue_names() -> None:
    dyads = {crisis.dyad for crisis in load_labels(LABELS)}
    assert {"RUS-TUR", "CHN-IND", "IRN-PAK"} <= dyads
    calm = [c for c in load_labels(LABELS) if c.onset is None]
    assert calm and all(not (c.expect.escalation or c.expect.warning) for c in calm)


@pytest.mark.parametrize("labels_path", LABELS, ids=lambda path: path.name)
def test_every_event_reads_belongs_to_its_dyad_and_cites_a_source(labels_path: Path) -> None:
    (crisis,) = load_labels([labels_path])
    report = ReadReport()
    records = [item.record for item in read_in_play_order([events_of(labels_path)], "native", report=report)]
    assert report.bad_count == 0 and records
    events = [r for r in records if isinstance(r, CrisisEvent)]
    assert len({e.event_id for e in events}) == len(events)
    in_dyad = [e for e in events if e.dyad == crisis.dyad]
    assert len(in_dyad) >= 0.6 * len(events)  # the rest: third parties urging restraint
    for event in events:
        assert event.provenance.document.startswith(("http://", "https://", "seeds/"))
        assert event.provenance.quote.strip()
    covered = [e for e in in_dyad if crisis.covers.holds(e.event_time)]
    assert len(covered) == len(in_dyad)


def test_golden_scores_of_the_library() -> None:
    crises = load_labels(LABELS)
    result = run_backtest(library_files(), EngineConfig(), "native", watched={c.dyad for c in crises})
    scores = json.loads(scores_json(evaluate(result, crises), None))
    assert scores == json.loads(GOLDEN.read_text(encoding="utf-8"))
