"""Robust reading: a sample that cannot be read is replaced by another, counted and logged with its path.

`RobustDataset` wraps a map-style dataset keyed by the sampler's `(index, seed)` (or a plain index)
that returns a dict. When a read fails it

* marks the index bad in this process (a key whose index is known bad is never read again),
* logs a warning naming the file and the reason (logger `tessera.data`) and appends a JSON line
  `{"index", "path", "reason"}` to `log_path` (one `write` on an `O_APPEND` file, so the DataLoader
  workers can share it),
* returns a replacement: the index and seed of attempt `a` are `replacement_key(seed, a, len)`, a
  function of the requested seed only. A resumed run, or a run with another number of workers,
  therefore gets the same replacement, and the same `"replaced"` count, whichever process knew what.

Every returned sample carries `"replaced"`: how many draws for it failed (the requested index and any
replacement that failed, counting a draw of an index already known bad as failed even though it is
not read again). It is a function of the key and of which files are bad, never of which worker
read it. The trainer sums it over batches (and processes) and calls `check_bad_fraction`.

**Process isolation** (`isolate=True`): some decoders kill their process (decord calls abort() on
some malformed headers), and a dead DataLoader worker ends the whole iteration. With isolation each
process that reads (each DataLoader worker, or the main process with `num_workers=0`) forks one
reader child on its first read; the child runs the wrapped dataset's `__getitem__` and sends the
sample back over a socket pair, tensors and arrays as raw bytes received straight into their final
buffers. If the child dies, the index is marked bad ("decoder killed its process (signal N, NAME)"),
a new child is forked on the next read and the sample is replaced. The child is a raw `os.fork`, not
a `multiprocessing.Process`: DataLoader workers are daemonic and multiprocessing forbids daemonic
processes to have children. The child ignores SIGINT/SIGTERM (a Ctrl-C or a scheduler's SIGTERM to
the process group must not pass for a broken file), writes no core file, and exits when its parent's
end of the socket closes; the parent closes it and reaps the child at exit (a `multiprocessing.util`
finalizer, which DataLoader workers run as they finish) or on `close()`. Any process forked from
the parent (a DataLoader worker, another reader) closes its copies of the parent's reader sockets at
once (`os.register_at_fork`), so EOF still reaches each child. The child runs torch with one thread,
as a DataLoader worker does (which also keeps OpenMP away from a pool forked mid-use).

Known-bad indices are also read back from `log_path` (entries whose path still matches), so each
bad file is read, warned about and logged about once per run, not once per worker per epoch. A file
repaired in place is therefore still skipped until its line is removed from the log.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path
from typing import Any, Callable

import numpy as np
from torch.utils.data import Dataset

from tessera.data.isolation import NOT_SENT, ReaderProcess, failure_reason

logger = logging.getLogger("tessera.data")


class TooManyBadSamples(RuntimeError):
    """Too many unreadable samples: past `data.max_bad_fraction`, or no readable replacement found."""


# --------------------------------------------------------------------------------------------------
# The bad-fraction rule


def check_bad_fraction(bad: int, seen: int, max_bad_fraction: float, dataset_size: int,
                       log_path: str | Path | None = None) -> None:
    """Raise `TooManyBadSamples` when failed reads exceed `max_bad_fraction` of the reads.

    `bad` is the sum of the samples' `"replaced"` counts (failed draws) and `seen` the number of
    samples delivered, both summed over every batch and every process so far. The reads are
    `seen + bad`, and the rule is

        bad > max_bad_fraction * max(seen + bad, dataset_size)

    so the fraction estimates the share of bad files in the dataset (every draw is a file picked
    at random), and the denominator never falls below the dataset size: a few bad files in the first
    batches do not stop a run whose dataset is within the limit, yet a dataset past it is refused
    within its first epoch (each file is drawn once per epoch). `max_bad_fraction=0` refuses the
    first bad read.
    """
    if not 0.0 <= max_bad_fraction <= 1.0:
        raise ValueError(f"max_bad_fraction must be in [0, 1], got {max_bad_fraction}")
    if bad < 0 or seen < 0 or dataset_size < 1:
        raise ValueError(f"need bad >= 0, seen >= 0 and dataset_size >= 1, got {bad}, {seen}, {dataset_size}")
    reads = seen + bad
    allowed = max_bad_fraction * max(reads, dataset_size)
    if bad <= allowed:
        return
    where = (f"the files and reasons are listed in {log_path}" if log_path is not None
             else "the files and reasons are in the 'tessera.data' warnings")
    raise TooManyBadSamples(
        f"{bad} of {reads} sample reads failed ({bad / reads:.2%}), more than data.max_bad_fraction="
        f"{max_bad_fraction:g} allows ({allowed:.1f} = {max_bad_fraction:g} x max(reads {reads}, dataset size "
        f"{dataset_size})); {where}. Repair or remove those files from the list, or raise data.max_bad_fraction."
    )


def replacement_key(seed: int, attempt: int, dataset_size: int) -> tuple[int, int]:
    """The `(index, seed)` tried at replacement `attempt` (1, 2, ...) for a sample drawn with `seed`."""
    rng = np.random.default_rng([int(seed) % 2**64, int(attempt)])
    return int(rng.integers(dataset_size)), int(rng.integers(2**63))


def _split_key(key: Any) -> tuple[int, int, bool]:
    """`(index, seed)` or a plain index (seed = index, as VideoPretrainDataset does); True if plain."""
    if isinstance(key, (tuple, list)):
        if len(key) != 2:
            raise TypeError(f"a key is (index, seed) or an index, got {key!r}")
        return int(key[0]), int(key[1]), False
    return int(key), int(key), True


class RobustDataset(Dataset):
    """Replace unreadable samples deterministically, count them in `"replaced"` and log their paths.

    `dataset[key]` with `key = (index, seed)` (the ResumableSampler's) or a plain index returns a dict.
    `errors` are the exceptions that mean "this file is bad" (anything else propagates); `describe`
    names an index's file (default: `dataset.entry_path(index)` if the dataset has it, else the
    index). `max_bad_fraction` is not enforced here (each DataLoader worker sees only its share): the
    trainer sums `"replaced"` and calls `check(bad, seen)`. `isolate=True` reads in a forked child
    (see the module docstring); `timeout` (seconds, isolation only) kills a child that hangs and
    counts the file as bad. After `max_retries` failed replacements `TooManyBadSamples` is raised.
    """

    def __init__(self, dataset: Any, max_bad_fraction: float = 0.0, isolate: bool = False,
                 log_path: str | Path | None = None, describe: Callable[[int], str] | None = None,
                 errors: tuple[type[BaseException], ...] = (Exception,), max_retries: int = 10,
                 timeout: float | None = None) -> None:
        if not 0.0 <= max_bad_fraction <= 1.0:
            raise ValueError(f"max_bad_fraction must be in [0, 1], got {max_bad_fraction}")
        if max_retries < 1:
            raise ValueError(f"max_retries must be >= 1, got {max_retries}")
        if timeout is not None and (not isolate or timeout <= 0):
            raise ValueError(f"timeout needs isolate=True and a positive value, got {timeout} (isolate={isolate})")
        errors = tuple(errors)
        if not errors or not all(isinstance(e, type) and issubclass(e, BaseException) for e in errors):
            raise ValueError(f"errors must be exception types, got {errors!r}")
        if len(dataset) < 1:
            raise ValueError("cannot make a robust dataset of an empty dataset")
        self.dataset = dataset
        self.max_bad_fraction = float(max_bad_fraction)
        self.isolate = bool(isolate)
        self.log_path = Path(log_path) if log_path is not None else None
        self.errors = errors
        self.max_retries = int(max_retries)
        self.timeout = timeout
        self._describe = describe
        self.collate = getattr(dataset, "collate", None)  # make_loader's collate_fn lookup sees through
        self.bad: dict[int, str] = {}  # index -> reason, known bad in this process
        self._reset_process_state()

    # -- per-process state: never pickled, rebuilt in every new process ---------------------------

    def _reset_process_state(self) -> None:
        self._pid = os.getpid()
        self._reader: ReaderProcess | None = None
        self._lock = threading.RLock()
        self._log_loaded = False

    def _own_process(self) -> None:
        """After a fork (a DataLoader worker) drop the parent's reader handle and lock, keep `bad`.

        The inherited handle's socket copy is already closed (`_forget_readers_after_fork`).
        """
        if self._pid != os.getpid():
            self._reset_process_state()

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        for name in ("_pid", "_reader", "_lock", "_log_loaded"):
            state.pop(name)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._reset_process_state()

    # -- public -------------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.dataset)

    def describe(self, index: int) -> str:
        """The file behind `index`, for messages."""
        try:
            if self._describe is not None:
                return str(self._describe(index))
            if hasattr(self.dataset, "entry_path"):
                return str(self.dataset.entry_path(index))
        except Exception:  # a message must not fail
            pass
        return str(index)

    def entry_path(self, index: int) -> str:
        return self.describe(index)

    def check(self, bad: int, seen: int) -> None:
        """`check_bad_fraction` with this wrapper's limit, dataset size and log."""
        check_bad_fraction(bad, seen, self.max_bad_fraction, len(self), self.log_path)

    def close(self) -> None:
        """Stop this process's reader child, if any (also done at exit and on garbage collection)."""
        self._own_process()
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def __getitem__(self, key: Any) -> dict:
        index, seed, plain = _split_key(key)
        size = len(self)
        if not 0 <= index < size:  # a sampler bug, not a bad file
            raise IndexError(f"index {index} is outside the dataset's {size} samples")
        self._own_process()
        with self._lock:
            self._load_log()
            replaced, current, current_index, reasons = 0, key, index, []
            for attempt in range(1, self.max_retries + 2):
                reason = self.bad.get(current_index)
                if reason is None:
                    ok, result = self._read(current)
                    if ok:
                        if not isinstance(result, dict):
                            raise TypeError(f"the wrapped dataset must return a dict, got {type(result).__name__}")
                        sample = dict(result)
                        sample["replaced"] = replaced
                        return sample
                    reason = result
                    self._mark_bad(current_index, reason)
                replaced += 1
                reasons.append(f"{self.describe(current_index)}: {reason}")
                if attempt > self.max_retries:
                    break
                current_index, current_seed = replacement_key(seed, attempt, size)
                current = current_index if plain else (current_index, current_seed)
        raise TooManyBadSamples(
            f"no readable replacement for sample {index} ({self.describe(index)}) in {self.max_retries} "
            f"replacement draws; every draw failed, the last ones: {'; '.join(reasons[-3:])}. Most of the "
            f"dataset may be unreadable, or the reader itself is broken"
            + (f"; see {self.log_path}" if self.log_path is not None else "")
        )

    # -- internals ----------------------------------------------------------------------------------

    def _read(self, key: Any) -> tuple[bool, Any]:
        if not self.isolate:
            try:
                return True, self.dataset[key]
            except self.errors as error:
                return False, failure_reason(error)
        for _ in range(2):
            if self._reader is None or not self._reader.alive:
                self._reader = ReaderProcess(self.dataset, self.errors)
            ok, result = self._reader.read(key, self.timeout)
            if ok or result is not NOT_SENT:
                return ok, result
        return False, "cannot start a reader process that stays alive"

    def _mark_bad(self, index: int, reason: str) -> None:
        self.bad[index] = reason
        path = self.describe(index)
        logger.warning("unreadable sample %d, replaced by another: %s: %s", index, path, reason)
        if self.log_path is not None:
            line = json.dumps({"index": index, "path": path, "reason": reason}) + "\n"
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line.encode("utf-8"))  # one write per line: workers' lines never interleave
            finally:
                os.close(fd)

    def _load_log(self) -> None:
        """Learn the bad indices already in `log_path` (once per process), where the path still matches."""
        if self._log_loaded:
            return
        self._log_loaded = True
        if self.log_path is None or not self.log_path.is_file():
            return
        size = len(self)
        with open(self.log_path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                try:
                    entry = json.loads(line)
                    index, path, reason = int(entry["index"]), str(entry["path"]), str(entry["reason"])
                except (ValueError, KeyError, TypeError):
                    continue  # a half-written last line, or not ours
                if 0 <= index < size and index not in self.bad and self.describe(index) == path:
                    self.bad[index] = reason
