"""``thermalcount record``: frames from a sensor into a crash-safe recording."""

from __future__ import annotations

import click

from thermalcount.cli.options import DURATION, FRAME_COUNT, sensor_options


@click.command()
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False),
              help="Recording to write (HDF5, e.g. doorway.h5).")
@click.option("--duration", type=DURATION, default=None,
              help="Stop after this much recording, e.g. 30s, 10m, 2h (default: until Ctrl-C).")
@click.option("--frames", "max_frames", type=FRAME_COUNT, default=None,
              help="Stop after writing this many frames.")
@click.option("--append", is_flag=True, help="Add frames to an existing recording (same fps).")
@click.option("--overwrite", is_flag=True, help="Replace an existing recording.")
@click.option("--no-preview", is_flag=True,
              help="Plain log lines instead of the live view (automatic when not on a terminal).")
@sensor_options(orientation="stored")
def record(out_path, sensor_spec, fps, duration, max_frames, append, overwrite, no_preview, bus,
           address, orientation, speed, scenario, seed, faults):
    """Record frames from the sensor into an HDF5 recording.

    Frames are written to disk once a second: if the recorder is killed or the power
    fails, the file still opens and holds everything up to about a second before. Ctrl-C
    or SIGTERM stop cleanly. Sensor faults are retried and reported once per outage.
    With --sensor sim the simulator's ground-truth crossings are stored too.

    \b
    Example:
      thermalcount record --out doorway.h5 --duration 30m
      thermalcount record --out doorway.h5 --append --duration 10m --no-preview
      thermalcount record --sensor sim --speed max --frames 36000 --out sim.h5
    """
    import signal
    import sys
    import threading

    from thermalcount.errors import OutputPathError
    from thermalcount.store.record import RecordStats, record as record_frames
    from thermalcount.sensors import open_sensor, parse_spec
    from thermalcount.store import RecordingWriter, check_recording_path

    # Refuse a bad output before touching the sensor, so nothing is created or truncated.
    existed = check_recording_path(out_path, append=append, overwrite=overwrite)
    replayed = parse_spec(sensor_spec).reads_file
    if replayed is not None:
        from thermalcount.support.safe_files import refuse_same_file

        refuse_same_file(replayed, out_path, "replayed recording")
    sensor = open_sensor(sensor_spec, fps=float(fps), speed=speed, bus=bus, address=address,
                         orientation=orientation, seed=seed, scenario=scenario, faults=faults)
    stop = threading.Event()
    previous = {}

    def request_stop(signum, _frame):
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            previous[signum] = signal.signal(signum, request_stop)
        except ValueError:  # not the main thread (e.g. embedded use): no signal handling
            pass

    stats = RecordStats()
    view = _make_view(no_preview, stats, max_frames, duration, out_path, sensor_spec)
    try:
        with sensor:
            # The simulator knows who crossed: say so even if nobody does in this recording.
            truth = {"ground_truth": "simulated"} if hasattr(sensor, "ground_truth") else None
            writer = RecordingWriter(out_path, sensor_info=sensor.info, fps=float(fps),
                                     append=append, overwrite=overwrite, attrs=truth)
            try:
                with view:
                    record_frames(sensor, writer, max_frames=max_frames, duration=duration,
                                  on_frame=view.on_frame, on_notice=view.on_notice,
                                  stop_event=stop, stats=stats, speed=speed)
            except OutputPathError:
                # Disk full or a write error: the file is intact up to the last batch; say
                # what was kept before the one-line error.
                click.echo(_summary(stats, out_path, writer.frames_on_disk), err=True)
                raise
            finally:
                writer.close()
                total = writer.frames_written
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)

    if not existed and total == 0:
        # Nothing was recorded into a new file: leave no empty recording behind.
        import os

        os.remove(out_path)
        click.echo(f"no frames recorded; {out_path} was not kept", err=True)
        sys.exit(1)
    click.echo(_summary(stats, out_path, total))


def _summary(stats, out_path, total) -> str:
    reason = {"stop": "stopped", "frames": "frame limit reached", "duration": "duration reached",
              "end of stream": "end of replay"}.get(stats.stopped_by, stats.stopped_by)
    if stats.stopped_by == "error":
        # After a write error only the frames on disk count: the batch being written is gone.
        return (f"stopped by a write error: {total} frames in {out_path}; {stats.frames} frames were "
                f"read in {stats.elapsed:.1f} s, the last unsaved ones are lost")
    text = (f"{reason}: wrote {stats.frames} frames to {out_path} ({total} in the file) in "
            f"{stats.elapsed:.1f} s, {stats.rate:,.1f} frames/s, {stats.dropped} dropped, "
            f"{stats.sensor_errors} failed sensor reads")
    if stats.suspect_frames:
        text += f", {stats.suspect_frames} frames with NaN or impossible values (stored as read)"
    if stats.events:
        text += f", {stats.events} ground-truth events"
    return text


def _make_view(no_preview, stats, max_frames, duration, out_path, sensor_spec):
    import sys

    if no_preview or not sys.stdout.isatty():
        return _LogView(stats, out_path)
    return _LiveView(stats, max_frames, duration, out_path, sensor_spec)


class _LogView:
    """Plain lines for journald: a progress line every ``every`` seconds, faults at once."""

    def __init__(self, stats, out_path, every: float = 10.0):
        import time

        self.stats, self.every, self._clock = stats, every, time.monotonic
        self._next = self._clock() + every
        click.echo(f"recording to {out_path}", err=True)

    def on_frame(self, frame, stats):
        now = self._clock()
        if now >= self._next:
            self._next = now + self.every
            click.echo(f"{stats.frames} frames ({stats.rate:.1f} frames/s), {stats.dropped} dropped, "
                       f"{stats.sensor_errors} failed sensor reads", err=True)

    def on_notice(self, kind, message):
        click.echo(message, err=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class _LiveView:
    """The rich live view: heatmap of the latest frame, counters, progress when the end is known."""

    def __init__(self, stats, max_frames, duration, out_path, sensor_spec):
        from rich.console import Console
        from rich.live import Live

        self.stats, self.max_frames, self.duration = stats, max_frames, duration
        self.out_path, self.sensor_spec = out_path, sensor_spec
        self.notices = []
        self.console = Console(stderr=True)
        self.live = Live(get_renderable=self.render, console=self.console, refresh_per_second=4,
                         transient=False)

    def on_frame(self, frame, stats):
        pass  # the live thread reads ``stats`` four times a second; nothing to do per frame

    def on_notice(self, kind, message):
        self.notices = (self.notices + [message])[-4:]

    def render(self):
        from rich.console import Group
        from rich.panel import Panel
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        from thermalcount.app.dashboard import heatmap_text

        stats = self.stats
        facts = Table.grid(padding=(0, 2))
        facts.add_column(style="bold")
        facts.add_column()
        facts.add_row("file", str(self.out_path))
        facts.add_row("sensor", self.sensor_spec)
        facts.add_row("frames written", f"{stats.frames:,}")
        facts.add_row("recorded", f"{stats.recorded_seconds:,.1f} s")
        facts.add_row("rate", f"{stats.rate:,.1f} frames/s")
        facts.add_row("dropped", Text(str(stats.dropped), style="yellow" if stats.dropped else ""))
        facts.add_row("sensor errors", Text(str(stats.sensor_errors), style="red" if stats.sensor_errors else ""))
        if stats.suspect_frames:
            facts.add_row("suspect frames", Text(str(stats.suspect_frames), style="yellow"))
        if stats.sensor_problem:
            facts.add_row("status", Text(stats.sensor_problem, style="red"))
        elif stats.frames:
            facts.add_row("status", Text("ok", style="green"))
        body = Table.grid(padding=(0, 3))
        body.add_row(heatmap_text(stats.last_pixels), facts)
        parts = [body]
        fraction = self._fraction()
        if fraction is not None:
            bar = Table.grid(padding=(0, 1))
            bar.add_row(ProgressBar(total=1.0, completed=fraction, width=40), f"{fraction:.0%}")
            parts.append(bar)
        if self.notices:
            parts.append(Text("\n".join(self.notices), style="yellow"))
        return Panel(Group(*parts), title="thermalcount record", subtitle="Ctrl-C to stop")

    def _fraction(self):
        parts = []
        if self.max_frames:
            parts.append(self.stats.frames / self.max_frames)
        if self.duration:
            parts.append(self.stats.recorded_seconds / self.duration)
        return min(max(parts), 1.0) if parts else None

    def __enter__(self):
        self.live.__enter__()
        return self

    def __exit__(self, *exc):
        return self.live.__exit__(*exc)
