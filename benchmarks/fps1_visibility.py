"""How many of the accuracy suite's 1 FPS crossings can tell a direction at all.

For every true event of the ``fps1`` family (docs/accuracy.md), count the frames in which the
crossing person's centre is inside the view (the simulator's ground truth ``people``), over
the run of such frames nearest the event. A crossing seen in one frame only shows a blob at
one position: nothing says which way it was going. Usage (repository root):

    python benchmarks/fps1_visibility.py [--size ci|full]
"""

from __future__ import annotations

import argparse
import collections

from thermalcount.evaluation.suite import family
from thermalcount.sensors.sim.simulator import Simulator


def frames_in_view(people, frame: int) -> int:
    """Length of the run of frames with someone in view at or next to ``frame`` (0: none)."""
    n = len(people)
    near = [f for f in (frame, frame - 1, frame + 1) if 0 <= f < n and people[f] > 0]
    if not near:
        return 0
    first = last = near[0]
    while first > 0 and people[first - 1] > 0:
        first -= 1
    while last < n - 1 and people[last + 1] > 0:
        last += 1
    return last - first + 1


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=("ci", "full"), default="full")
    args = parser.parse_args(argv)
    item = family("fps1")
    runs = collections.Counter()
    for seed, room, frames in item.recordings(args.size):
        sim = Simulator(item.scenario, seed=seed, room=room, fps=item.fps, travel_axis=item.travel_axis,
                        reverse=item.reverse, **item.params)
        chunk = sim.generate(frames)
        for event in chunk.events:
            if event.frame < frames:
                runs[frames_in_view(chunk.people, event.frame)] += 1
    total = sum(runs.values())
    print(f"fps1 ({args.size}): {total} crossings; frames with the person's centre in view:")
    for length in sorted(runs):
        print(f"  {length} frame(s): {runs[length]:4d} ({runs[length] / total:.0%})")
    single = runs[0] + runs[1]
    print(f"seen in at most one frame (no direction to tell): {single} of {total} ({single / total:.0%})")


if __name__ == "__main__":
    main()
