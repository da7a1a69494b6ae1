"""Shortening a divergent program: drop chunks of calls while the replay still diverges."""
import time

from nanvix.refine.lockstep import replay


def shrink(program, seconds=60.0, plant=None, loop=False):
    """A shorter program that still diverges: drop chunks of calls (halves, then quarters, down
    to single calls) while the replay still raises a Divergence, within a time budget."""
    end = time.monotonic() + seconds
    if replay(program, plant, loop) is None:
        return program  # does not reproduce on its own (it depended on earlier episodes)
    n = 2
    while len(program) > 1 and time.monotonic() < end:
        size = -(-len(program) // n)
        for i in range(0, len(program), size):
            cand = program[:i] + program[i + size:]
            if time.monotonic() >= end:
                break
            if replay(cand, plant, loop) is not None:
                program, n = cand, max(n - 1, 2)
                break
        else:
            if n >= len(program):
                break
            n = min(len(program), 2 * n)
    return program
