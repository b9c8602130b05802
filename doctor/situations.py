"""A probe's check as named situations tried in order, instead of one long ladder of ifs.

Each situation is a small function that takes the probe's reading of this run and returns a
`Finding` when it applies, or None to let the next one look; the first finding wins, and the
last situation always answers. A situation may also note what it saw on the reading (a detail,
a fact, a warning) for the later ones. `which` names the situation that decided, so tests can
check each one on its own and a reader sees the order in one tuple.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

from doctor.model import Finding

Situation = Callable[[Any], Optional[Finding]]


def which(situations: Sequence[Situation], reading: Any) -> tuple[str, Finding]:
    """(the name of the first situation that applies, its finding)."""
    for situation in situations:
        finding = situation(reading)
        if finding is not None:
            return situation.__name__, finding
    raise LookupError(f"no situation applied (last tried: {situations[-1].__name__}); the last must always answer")


def first_finding(situations: Sequence[Situation], reading: Any) -> Finding:
    """The finding of the first situation that applies."""
    return which(situations, reading)[1]
