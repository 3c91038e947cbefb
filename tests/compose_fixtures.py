"""The compose stack's images, built in the background while the rest of the session runs.

From nothing, the build takes minutes (Docker Compose from Go modules, the Debian base, the
images: 7 to 10 on a new 2-core machine), while most of the suite's time is spent waiting on a
broker or a worker. So when a session is about to run a test that uses `stack_images`, the
build starts on a thread of its own, and those tests run last; `stack_images` waits for the
build. The thread's nice value is 19: on Linux a thread's nice value is its own and is
inherited by what it starts, so the build's commands (go, debootstrap, docker) and a `dockerd`
it starts (and with it the containers of the build and, later, of the stack) yield to the
other tests. A daemon that was already running builds at its own priority.

Load with `pytest_plugins = ["tests.compose_fixtures"]` in conftest.py.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import threading
from collections.abc import Callable
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
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BUILD_NICENESS)
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

    def close(self, say: Callable[[str], object]) -> None:
        if self._thread.is_alive():
            say("waiting for the compose images' build to end (Ctrl-C again leaves it running)")
        self._thread.join()
        self._cleanup.close()


BUILD = pytest.StashKey[BackgroundBuild]()


def needs_images(item: pytest.Item) -> bool:
    return "stack_images" in getattr(item, "fixturenames", ())


@pytest.hookimpl(trylast=True)  # after -k, -m and --deselect have taken their tests out
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that use the stack's images go last: their build has the rest of the session."""
    last = [item for item in items if needs_images(item)]
    if last:
        items[:] = [item for item in items if not needs_images(item)] + last


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> None:
    """Starts the build when the tests are about to run and one of them needs it (not for a
    collection that failed, --collect-only or --setup-plan)."""
    option = session.config.option
    if session.testsfailed or option.collectonly or option.setupplan:
        return
    if any(needs_images(item) for item in session.items):
        session.config.stash[BUILD] = BackgroundBuild().start()


@pytest.hookimpl(trylast=True)  # after pytest's own, which tears down what is still set up
def pytest_sessionfinish(session: pytest.Session) -> None:
    if build := session.config.stash.get(BUILD, None):
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        build.close(reporter.write_line if reporter else log.warning)


@pytest.fixture(scope="session")
def stack_images(request: pytest.FixtureRequest) -> StackImages:
    """The compose stack's images, built (waits for the build the session started)."""
    build = request.config.stash.get(BUILD, None)
    if build is None:  # asked for by a test that did not name it (getfixturevalue)
        build = request.config.stash[BUILD] = BackgroundBuild().start()
    return build.wait()
