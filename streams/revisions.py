"""Stage 3, dedupe and correct: what one event does to the applied tally of its (TPS, ballot).

Pure: `decide` takes the currently applied state (or None) and a valid tally, and says
applied / duplicate / stale / conflict. See the state diagram in the README.
"""

from __future__ import annotations

from dataclasses import dataclass

from streams.contract import Tally
from streams.reasons import Decision


@dataclass(frozen=True, slots=True)
class Applied:
    """The tally that counts for one (TPS, ballot), as ClickHouse holds it in `tally_current`."""

    tps: str
    ballot: str
    revision: int
    event_id: str
    digest: str
    votes: dict[str, int]
    invalid: int
    voters: int
    # Every event_id ever applied for this key: a resend of an old one is a duplicate, not stale.
    event_ids: tuple[str, ...] = ()

    @classmethod
    def from_tally(cls, t: Tally, previous: Applied | None = None) -> Applied:
        earlier = previous.event_ids if previous is not None else ()
        return cls(
            t.tps,
            t.ballot,
            t.revision,
            t.event_id,
            t.content_digest(),
            dict(t.votes),
            t.invalid,
            t.voters,
            earlier + (t.event_id,),
        )


def decide(current: Applied | None, t: Tally) -> Decision:
    if current is None:
        return Decision.APPLIED
    if t.event_id in current.event_ids:
        return Decision.DUPLICATE
    if t.revision < current.revision:
        return Decision.STALE
    if t.revision == current.revision:
        # The same counts resent under a new event_id are a duplicate, other counts a conflict.
        return Decision.DUPLICATE if t.content_digest() == current.digest else Decision.CONFLICT
    return Decision.APPLIED
