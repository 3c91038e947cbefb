"""The compose stack's images, built in the background while the rest of the session runs.

From nothing, the build takes minutes (Docker Compose from Go modules, the Debian base, the
images: about 10 on a new 2-core machine), while most of the suite's time is spent waiting on a
broker or a worker. So when a session selects a test that uses `stack_images`, the build starts
as soon as collection ends, on a thread of its own at the lowest CPU priority, and those tests
run last; `stack_images` waits for the build. The other tests keep the cores: on Linux a
thread's nice value is its own and is inherited by what it starts, so the build's commands and
a `dockerd` it starts (and so the containers the build runs) yield to them.

Load with `pytest_plugins = ["tests.compose_fixtures"]` in conftest.py.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import threading
from pathlib import Path

import pytest

from devtools.compose_stack import StackImages, built_images

log = logging.getLogger(__name__)

BUILD_NICENESS = 19
"""The lowest priority: the build gets only what the tests leave."""


class BackgroundBuild:
    """`built_images` entered on a thread; `wait` gives its images or raises its error, `close`
    ends what it started (a daemon, the wheel server, its work directory)."""

    def __init__(self) -> None:
        self._cleanup = contextlib.ExitStack()
        self._images: StackImages | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._build, name="compose-images", daemon=True)

    def start(self) -> BackgroundBuild:
        self._thread.start()
        return self

    def _build(self) -> None:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BUILD_NICENESS)
        try:
            work_dir = Path(self._cleanup.enter_context(tempfile.TemporaryDirectory(prefix="compose-")))
            self._images = self._cleanup.enter_context(built_images(work_dir))
        except BaseException as error:  # re-raised by wait(), in the test that needs the images
            self._error = error

    def wait(self) -> StackImages:
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._images is not None
        return self._images

    def close(self) -> None:
        if self._thread.is_alive():
            log.warning("waiting for the compose images' build to end (Ctrl-C again leaves it running)")
        self._thread.join()
        self._cleanup.close()


BUILD = pytest.StashKey[BackgroundBuild]()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests that use the stack's images go last, and their build starts now."""
    needing = [item for item in items if "stack_images" in getattr(item, "fixturenames", ())]
    if not needing:
        return
    last = set(map(id, needing))
    items[:] = [item for item in items if id(item) not in last] + needing
    if not config.option.collectonly:
        config.stash[BUILD] = BackgroundBuild().start()


def pytest_sessionfinish(session: pytest.Session) -> None:
    if build := session.config.stash.get(BUILD, None):
        build.close()


@pytest.fixture(scope="session")
def stack_images(request: pytest.FixtureRequest) -> StackImages:
    """The compose stack's images, built (waits for the build the session started)."""
    build = request.config.stash.get(BUILD, None)
    if build is None:  # requested by a test collection did not see asking for it
        build = request.config.stash[BUILD] = BackgroundBuild().start()
    return build.wait()
