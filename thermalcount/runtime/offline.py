"""Offline counting: a recording in, events and totals out.

The result carries the recording's ground truth (when it has any) so that callers can score
it (:func:`thermalcount.evaluation.scoring.score_result`); counting itself does not score.

The recording is streamed in chunks (bounded memory for any length), each chunk is run
through the model as one batch and handed to the counter as whole arrays, so nothing loops
in Python per frame. This is what ``thermalcount count`` calls.

Frames holding NaN or infinity (a broken read stored as NaN, a damaged file) are skipped:
the counter sees the state of the last good frame held through them (as if the sensor had
paused), and the result carries a warning naming the first such frame. They are not an
error because one bad frame in a day-long recording should not stop the count.

``orientation`` turns the frames before the model: an orientation (``rotate=90``...), or
``auto``, which first finds the travel axis from a sample of the recording
(:func:`find_recording_axis`) and transposes the frames when it is not the model's. The
library's default is None, the frames as stored; ``thermalcount count`` passes ``auto``.
"""

from __future__ import annotations

import queue
import threading
import time as _time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Optional, Union

import numpy as np

from thermalcount.runtime.counter import Counter, CountEvent
from thermalcount.model.loader import Model
from thermalcount.runtime.timestamps import TimeGuard
from thermalcount.model.travel_axis import AUTO, AxisChoice, AxisFinding, TravelAxisFinder, choose, orientation_setting

#: Frames per chunk (32 of the store's 256-frame HDF5 chunks). Small chunks keep every
#: per-chunk array (float64 copies in the pattern step, onnxruntime's intermediate tensors,
#: the chunks read ahead) in the CPU caches and small: on a 1,000,000-frame recording, peak
#: memory 158 MiB against 518 MiB with 65,536, and less CPU (user + system 7.7-8.0 s
#: against 8.5-12.5 s, fewer page faults), loaded 2-core machine (docs/counting.md).
DEFAULT_CHUNK_FRAMES = 8192
#: Chunks whose graph may be in flight on the worker thread while the next is prepared.
INFERENCE_AHEAD = 1
#: Frames timed on each backend by ``--backend auto`` before a long count.
CALIBRATION_FRAMES = 8192
#: ... timed in blocks of this many, so that the slower backend can stop once it has lost.
CALIBRATION_BLOCK = 2048
#: ``--orientation auto``: the travel axis is found from up to this many blocks of this many
#: seconds, spread evenly over the recording (all of it when it is shorter): 40 minutes of
#: frames at most, so a recording whose first hour is empty is still decided, and the look
#: costs ~0.1 s however long the recording.
AXIS_SAMPLE_BLOCKS = 8
AXIS_BLOCK_SECONDS = 300.0


@dataclass
class CountResult:
    """What :func:`count_recording` found."""

    path: str
    frames: int
    fps: float
    events: list  # CountEvent
    entries: int
    exits: int
    occupancy: int
    truth: list  # the recording's ground-truth events (empty without them)
    #: The recording says what truly happened (events, or a ground_truth mark with none).
    has_truth: bool = False
    skipped_frames: int = 0
    warnings: list = field(default_factory=list)
    backend: str = ""
    model: str = ""
    seconds: float = 0.0
    #: How the frames reached the model: the --orientation setting, the travel axis found.
    axis: Optional[AxisChoice] = None

    @property
    def truth_events(self) -> int:
        return len(self.truth)

    def to_json(self, score: Optional[dict]) -> dict:
        """The JSON object ``thermalcount count --json`` prints (schema in docs/counting.md),
        with ``score`` (the caller's score against the truth, or None) in its place."""
        return {
            "events": [event.to_json() for event in self.events],
            "entries": int(self.entries),
            "exits": int(self.exits),
            "score": score,
            "travel_axis": None if self.axis is None else self.axis.to_json(),
        }


def count_recording(path: Union[str, Path], *, model: Union[Model, str, Path, None] = None,
                    backend: str = "auto", flip: bool = False, orientation=None,
                    chunk_frames: int = DEFAULT_CHUNK_FRAMES, tuning: Optional[dict] = None,
                    progress: Optional[Callable[[int, int], None]] = None) -> CountResult:
    """Count the people crossing in a recording.

    ``model`` is a loaded :class:`Model`, a path, or None/"default" for the embedded model.
    ``orientation``: None or ``"none"`` = the frames as stored; ``"auto"`` = find the travel
    axis from the frames and transpose them when it is not the model's; an orientation
    string or :class:`~thermalcount.sensors.conversions.Orientation` = turned so.
    ``tuning`` holds :class:`~thermalcount.runtime.counter.CounterTuning` fields.
    ``progress(frames_done, n_frames)`` is called after each chunk. Raises RecordingError
    for a bad recording, ModelError for a bad model and UsageError for a bad orientation.
    """
    from thermalcount.store import open_recording

    if chunk_frames < 1:
        raise ValueError("chunk_frames must be at least 1")
    given = orientation_setting(orientation)  # a bad setting fails before any work
    began = _time.perf_counter()
    choose_backend = not isinstance(model, Model) and backend == "auto"
    if not isinstance(model, Model):
        model = Model.load(model, backend=backend)
    counter = Counter(model.meanings, flip=flip, warn_clamped=False, **(tuning or {}))
    # The state held through unreadable frames when nothing good came before: "nobody".
    empty_states = [m.cluster for m in model.meanings if m.people == 0]
    held_state = empty_states[0] if empty_states else 0
    events: list = []
    skipped, first_skipped = 0, None
    with open_recording(path) as recording:
        n_frames, fps = recording.n_frames, recording.fps
        if choose_backend and model.backend != "numpy" and n_frames >= CALIBRATION_FRAMES * 4:
            model = _faster_for_batches(model, recording.read(0, CALIBRATION_FRAMES))
        finding = find_recording_axis(recording) if given is None else None
        axis = choose(AUTO if given is None else given, model.travel_axis, finding)
        turn = None if axis.orientation.is_identity else axis.orientation.apply
        model.start_stream(fps)  # a model with a per-pixel background learns this recording's
        truth = recording.events
        has_truth = bool(truth) or recording.attrs.get("ground_truth") is not None
        times = TimeGuard(fps)  # NaN, absurd or backward timestamps would break every duration
        # One reader, the store's. offline.py had its own HDF5 decoder (raw chunks inflated on
        # two threads); measured on a 300,000-frame simulated recording, 2 cores, load ~3.5:
        # reading alone 1.64 M frames/s against the store's 1.71, count end to end 0.111
        # against 0.108 M frames/s (onnxruntime) and 0.068 against 0.127 (numpy), so it went.
        for chunk, states in _inferred(model, _prefetched(recording.iter_chunks(chunk_frames)), turn):
            bad = _unreadable_rows(chunk.frames)
            if bad is not None:
                skipped += len(bad)
                if first_skipped is None:
                    first_skipped = chunk.start + int(bad[0])
                states = _hold_previous(states, bad, held_state)
            held_state = int(states[-1])
            events.extend(counter.process(times.chunk(chunk.timestamps, chunk.start), states,
                                          start_frame=chunk.start))
            if progress is not None:
                progress(chunk.start + len(states), n_frames)
    events.extend(counter.finish())
    # One line for all clamped exits (a recording that starts with people inside has many).
    warnings = counter.drain_warnings()
    if counter.clamped:
        warnings.insert(0, f"{counter.clamped} exit(s) were counted while the occupancy was 0 "
                           f"(first at frame {counter.first_clamped_frame}); occupancy was kept at "
                           "0, so it may read low if people were inside when the recording began")
    if times.repaired:
        warnings.insert(0, times.warning())
    if skipped:
        warnings.insert(0, f"{skipped} frame(s) held NaN or infinite values (first: frame "
                           f"{first_skipped}); they were skipped")
    return CountResult(
        path=str(path), frames=n_frames, fps=fps, events=events, entries=counter.entries,
        exits=counter.exits, occupancy=counter.occupancy,
        truth=list(truth), has_truth=has_truth, skipped_frames=skipped, warnings=warnings,
        backend=model.backend, model=str(model.path), seconds=_time.perf_counter() - began, axis=axis)


def find_recording_axis(recording) -> AxisFinding:
    """The travel axis of an open recording, from a sample of its frames (``auto``).

    Up to AXIS_SAMPLE_BLOCKS blocks of AXIS_BLOCK_SECONDS, spread evenly from its start to
    its end, each a stream of its own (a fresh per-pixel background), or the whole recording
    as one stream when it is shorter than those blocks together.
    """
    from thermalcount.model.pattern import stream_fps

    fps = stream_fps(recording.fps)
    finder = TravelAxisFinder(fps)
    n_frames = recording.n_frames
    block = max(int(AXIS_BLOCK_SECONDS * fps), 1)
    if n_frames <= AXIS_SAMPLE_BLOCKS * block:
        spans = [(0, n_frames)]
    else:
        starts = np.linspace(0, n_frames - block, AXIS_SAMPLE_BLOCKS).astype(np.int64)
        spans = [(int(start), int(start) + block) for start in starts]
    for start, stop in spans:
        finder.start_stream()
        for first in range(start, stop, block):
            finder.add(recording.read(first, min(first + block, stop)))
    return finder.finding


def _faster_for_batches(model: Model, sample: np.ndarray) -> Model:
    """The model on whichever backend infers ``sample`` faster (``--backend auto`` only).

    Both backends run the same graph and are tested to agree, but their speed depends on
    the graph: onnxruntime's TopK (used by the "lowest" background) was measured 20x slower
    than numpy's sort, which makes numpy ~3x faster on such models, and onnxruntime was 3-10x
    faster on the default model of 2026-12. What is timed is CPU time of this process (all
    threads): during a count the other core is busy inflating chunks, so the backend that
    needs less CPU wins, and other programs' load does not skew it.

    Each backend goes through the sample once, in blocks; the second stops as soon as it has
    used more CPU than the first used for all of it (it has lost). That bounds the look at
    twice the faster backend's time: timing both twice in full took 0.4-0.6 s of a ~5 s
    count of 1,000,000 frames here, with numpy this much slower.
    """
    import time

    other = Model.load(model.path, backend="numpy")
    best, best_seconds = model, float("inf")
    for candidate in (model, other):
        candidate.infer_states(sample[:256])  # warm-up: sessions and buffers are made lazily
        seconds = 0.0
        for first in range(0, len(sample), CALIBRATION_BLOCK):
            began = time.process_time()
            candidate.infer_states(sample[first:first + CALIBRATION_BLOCK])
            seconds += time.process_time() - began
            if seconds >= best_seconds:
                break
        else:
            best, best_seconds = candidate, seconds
    return best


def _prefetched(chunks: Iterator, depth: int = 2) -> Iterator:
    """Read the next chunks in a background thread while the caller works on this one.

    Decompressing the store's gzip chunks is the largest cost of a count (measured ~1 s per
    million frames on one core here) and h5py holds the GIL while it inflates; onnxruntime
    releases it while it infers. So a reader thread overlaps the two on two cores. The
    thread is the only one touching the file until it is done; an error in it is re-raised
    here, and leaving early (an error in the caller) stops it.
    """
    slots: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def offer(item) -> bool:
        while not stop.is_set():
            try:
                slots.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        try:
            for chunk in chunks:
                if not offer(chunk):
                    return
            offer(done)
        except BaseException as error:  # handed to the consumer, raised there
            offer(error)

    reader = threading.Thread(target=read, name="thermalcount-count-reader", daemon=True)
    reader.start()
    try:
        while True:
            item = slots.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        reader.join()


def _inferred(model: Model, chunks: Iterator, turn: Optional[Callable] = None) -> Iterator:
    """``(chunk, states)`` for each chunk, in order, with the graph of one chunk running on a
    worker thread while this thread prepares the next (the per-pixel background, which must
    go in stream order) and the caller counts the last.

    The pattern step and the counter are Python and numpy that hold the interpreter's lock;
    onnxruntime infers without it. One after the other, a 1 M-frame count spent 1.0 s in the
    pattern step and 1.7 s in the graph (benchmarks/count_throughput.py); overlapped, the
    two cores do both at once. An error in the worker is raised here; leaving early waits for
    the graph in flight (one chunk, milliseconds) and discards it.
    """
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    pending: deque = deque()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="thermalcount-count-graph") as worker:
        try:
            for chunk in chunks:
                prepared = model.prepare(chunk.frames if turn is None else turn(chunk.frames))
                pending.append((chunk, worker.submit(model.states_of, prepared)))
                if len(pending) > INFERENCE_AHEAD:
                    done, states = pending.popleft()
                    yield done, states.result()
            while pending:
                done, states = pending.popleft()
                yield done, states.result()
        finally:
            for _, states in pending:
                states.cancel()


def _unreadable_rows(frames: np.ndarray) -> Optional[np.ndarray]:
    """Indices of frames holding NaN or inf, or None. One pass: a row's sum is finite only
    if every value in it is (an overflow to inf in the sum is checked pixel by pixel)."""
    sums = frames.reshape(len(frames), -1).sum(axis=1)
    suspicious = np.flatnonzero(~np.isfinite(sums))
    if not len(suspicious):
        return None
    rows = frames[suspicious].reshape(len(suspicious), -1)
    bad = suspicious[~np.isfinite(rows).all(axis=1)]
    return bad if len(bad) else None


def _hold_previous(states: np.ndarray, bad: np.ndarray, held_state: int) -> np.ndarray:
    """Replace the states of bad frames by the last good state before them (vectorised)."""
    states = states.copy()
    good = np.ones(len(states), bool)
    good[bad] = False
    # Index of the last good frame at or before each position (-1: none in this chunk).
    last_good = np.maximum.accumulate(np.where(good, np.arange(len(states)), -1))
    filled = np.where(last_good >= 0, states[np.maximum(last_good, 0)], held_state)
    return filled.astype(states.dtype, copy=False)


__all__ = ["count_recording", "find_recording_axis", "CountResult", "CountEvent", "DEFAULT_CHUNK_FRAMES"]
