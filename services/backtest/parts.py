"""A backtest split over processes: each plays the dyads of its part (`replay.readers.base.Part`).

The core is per dyad, so a run split by dyad raises the same alerts with the same ids as a run
in one process; what is shared is put back together in play order (`_merged`, run.py). Here is
only the machinery: forking the parts, handing their results back through files, and the
keyed logs their alerts are merged from.

Parts are forked (`os.fork` through multiprocessing's fork context), so they start at once,
with the modules, settings and callables of the process that forks them; nothing is pickled
but what they hand back. The first part runs in the calling process, so a run of N parts
keeps N processes busy, not N + 1. A fork copies only the thread that forks, with every lock
as it was: tqdm's monitor thread, which would hold tqdm's lock now and then, is never started.
A part ends with the process that forked it, however that one ends (`_die_with`), and the folder
they hand back through goes with the run, or with the next one when it was killed outright
(`parts_folder`).
"""

from __future__ import annotations

import ctypes
import heapq
import multiprocessing
import os
import pickle
import shutil
import signal
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Generic, TypeVar

from tqdm import tqdm

from replay.readers.base import Part

tqdm.monitor_interval = 0
T = TypeVar("T")
PR_SET_PDEATHSIG = 1
"""prctl(2): the signal a process gets when the thread that forked it ends (Linux)."""
BATCH = 1_000
"""Entries of a keyed log pickled at once."""


PARTS_FOLDER_PREFIX = "crisismon-parts-"


class PartFailed(RuntimeError):
    """A part's process ended without a result: killed, or out of memory."""


def parts_folder() -> tempfile.TemporaryDirectory[str]:
    """A run's folder for its parts' results and alerts (which may take gigabytes), removed when
    the run ends, however it ends but SIGKILL (or the kernel's out-of-memory killer): the folder
    is named by the run's process id, and those of runs no longer running are removed first."""
    temporary = Path(tempfile.gettempdir())
    for folder in temporary.glob(f"{PARTS_FOLDER_PREFIX}*-*"):
        pid = folder.name.removeprefix(PARTS_FOLDER_PREFIX).partition("-")[0]
        if pid.isdigit() and not _running(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)  # another user's is theirs to remove
    return tempfile.TemporaryDirectory(prefix=f"{PARTS_FOLDER_PREFIX}{os.getpid()}-", dir=temporary)


def _running(pid: int) -> bool:
    """Whether a process `pid` runs (anyone's: one whose id was taken again keeps its folder)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's
        return True
    return True


def in_parts(count: int, folder: Path, play: Callable[[Part], T]) -> list[T]:
    """`play(part)` for each of `count` parts, the first in this process and the rest in forked
    ones at the same time; their results in part order. An exception in this process's part
    stops the others and is raised; one in another part is raised once every part has ended."""
    for stream in (sys.stdout, sys.stderr):
        stream.flush()  # a child flushes its copy of the buffers as it exits: they must be empty
    context = multiprocessing.get_context("fork")
    children = [
        context.Process(target=_hand_back, args=(play, Part(index, count), folder, os.getpid()), daemon=True)
        for index in range(1, count)
    ]
    try:
        for child in children:
            child.start()
        first = play(Part(0, count))
        for child in children:
            child.join()
    finally:
        for child in children:  # after an exception here (a Ctrl-C too), the others are of no use
            if child.is_alive():  # SIGKILL: a part forked a moment ago still has the parent's handlers
                child.kill()
            if child.pid is not None:  # started
                child.join()
    results: list[T] = [first]
    for index, child in enumerate(children, start=1):
        results.append(_result_of(folder, index, child.exitcode))
    return results


def _hand_back(play: Callable[[Part], Any], part: Part, folder: Path, parent: int) -> None:
    """In a part's process: its result, or the exception that stopped it, pickled to a file."""
    _die_with(parent)
    try:
        outcome: tuple[str, Any] = ("result", play(part))
    except BaseException as error:  # handed to the parent, which raises it
        outcome = ("error", (_as_handed_back(error), traceback.format_exc()))
    written = folder / f"part-{part.index}.partial"
    with written.open("wb") as handle:
        pickle.dump(outcome, handle, protocol=pickle.HIGHEST_PROTOCOL)
    written.rename(folder / f"part-{part.index}.pickle")  # whole, or not there at all


def _die_with(parent: int) -> None:
    """Killed as soon as `parent` ends, even by SIGKILL: a part would otherwise play on for
    nobody, into a folder that is gone. What stops a run is the parent's to act on: a Ctrl-C
    reaches the whole process group, and the parent kills its parts (SIGKILL: a part that has
    not reached this line yet has the parent's handlers, where SIGTERM raises
    KeyboardInterrupt and prints its traceback; nothing is handed back either way)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent:  # it ended before the line above could take effect
        os._exit(1)


def _as_handed_back(error: BaseException) -> BaseException:
    """The error itself when the parent can rebuild it from its pickle, else a PartFailed that
    says what it was (an exception whose arguments are not its constructor's cannot be)."""
    try:
        pickle.loads(pickle.dumps(error))
    except Exception:
        return PartFailed(f"{type(error).__name__}: {error}")
    return error


def _result_of(folder: Path, index: int, exit_code: int | None) -> Any:
    path = folder / f"part-{index}.pickle"
    if not path.exists():
        raise PartFailed(f"part {index} of the backtest ended without a result (exit code {exit_code})")
    with path.open("rb") as handle:
        kind, value = pickle.load(handle)
    if kind == "error":
        error, trace = value
        error.add_note(f"in part {index} of the backtest:\n{trace}")
        raise error
    return value


class KeyedLog(Generic[T]):
    """Values with their play keys, appended in key order to a file and read back in that order:
    how a part's alerts reach the merge (`merged_in_key_order`) without all of them in memory."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle = path.open("wb")
        self._batch: list[tuple[Any, T]] = []

    def add(self, key: Any, value: T) -> None:
        self._batch.append((key, value))
        if len(self._batch) >= BATCH:
            self._write()

    def close(self) -> None:
        self._write()
        self._handle.close()

    def _write(self) -> None:
        if self._batch:
            pickle.dump(self._batch, self._handle, protocol=pickle.HIGHEST_PROTOCOL)
            self._batch = []

    def __iter__(self) -> Iterator[tuple[Any, T]]:
        with self.path.open("rb") as handle:
            while True:
                try:
                    batch = pickle.load(handle)
                except EOFError:
                    return
                yield from batch

    def __getstate__(self) -> dict[str, Any]:
        """Handed back closed: only where it is."""
        return {"path": self.path}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.path = state["path"]


def merged_in_key_order(logs: list[KeyedLog[T]]) -> Iterator[T]:
    """The logs' values in key order; values of one key keep their log's order."""
    for _, value in heapq.merge(*logs, key=lambda entry: entry[0]):
        yield value
