"""The worker's garbage collection: start-up frozen, full collections a hundred times rarer."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from services.bootstrap import GC_THRESHOLDS, collect_garbage_for_a_long_run


@pytest.fixture
def restored_gc() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*before)


@pytest.mark.usefixtures("restored_gc")
def test_start_up_is_frozen_and_full_collections_come_less_often() -> None:
    gc.unfreeze()
    built_at_start_up = [object()]
    collect_garbage_for_a_long_run()
    assert gc.get_freeze_count() > 0
    assert not any(found is built_at_start_up for found in gc.get_objects(generation=2))
    assert gc.get_threshold() == GC_THRESHOLDS
    assert GC_THRESHOLDS[:2] == (700, 10), "young garbage is collected as often as CPython's default"
    assert GC_THRESHOLDS[2] >= 100 * 10
