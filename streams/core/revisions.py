"""Stage 3, dedupe and correct: what one event does to the applied tally of its (TPS, ballot).

Pure: `decide` takes the currently applied state (or None) and a valid tally, and says
applied / duplicate / stale / conflict. See the state diagram in docs/wire-format.md.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from itertools import repeat
from operator import itemgetter

from streams.core.contract import Tally
from streams.core.reasons import Decision

_SHARED_CHOICES: dict[tuple[str, ...], tuple[str, ...]] = {}
_count_of = itemgetter(1)


def counted(votes: dict[str, int]) -> dict[str, int]:
    """The counts that are not 0, as tally_current keeps a tally's votes: most of a legislative
    tally's counts are 0, and each one stored is parsed, and merged again and again, by the server.
    A reader fills them from the contest's choices (`Applied.over`, the TPS page)."""
    return dict(filter(_count_of, votes.items()))


def shared_choices(choices: tuple[str, ...]) -> tuple[str, ...]:
    """One tuple per contest's choice list, shared by every key that has it."""
    return _SHARED_CHOICES.setdefault(choices, choices)


@dataclass(frozen=True, slots=True)
class Applied:
    """The tally that counts for one (TPS, ballot), as ClickHouse holds it in `tally_current`.

    Counts are kept as a tuple beside the contest's shared choice tuple, in the order of that tuple,
    so totals can add them as vectors. A worker does not hold these between batches: its state packs
    each one into a bytes record (`streams.core.state`)."""

    tps: str
    ballot: str
    revision: int
    event_id: str
    digest: str
    choices: tuple[str, ...]
    counts: tuple[int, ...]
    invalid: int
    voters: int
    # Every event_id ever applied for this key: a resend of an old one is a duplicate, not stale.
    event_ids: tuple[str, ...] = ()

    @property
    def votes(self) -> dict[str, int]:
        return dict(zip(self.choices, self.counts, strict=True))

    def over(self, choices: tuple[str, ...] | None) -> Applied:
        """This tally over a contest's `choices`, in their order, a choice it lacks counted 0 (read
        back from tally_current, which keeps no zero counts), sharing the contest's tuple with
        every key of it; over its own choices, shared, when there is no contest or it names a
        choice the contest lacks."""
        votes = self.votes
        if choices is None or not votes.keys() <= set(choices):
            return replace(self, choices=shared_choices(self.choices))
        return replace(
            self,
            choices=shared_choices(choices),
            counts=tuple(map(votes.get, choices, repeat(0))),
        )

    @classmethod
    def of(
        cls,
        tps: str,
        ballot: str,
        revision: int,
        event_id: str,
        digest: str,
        votes: dict[str, int],
        invalid: int,
        voters: int,
        event_ids: tuple[str, ...] = (),
    ) -> Applied:
        choices = shared_choices(tuple(votes))
        return cls(
            tps,
            ballot,
            revision,
            event_id,
            digest,
            choices,
            tuple(votes.values()),
            invalid,
            voters,
            event_ids,
        )

    @classmethod
    def from_tally(cls, t: Tally, previous: Applied | None = None) -> Applied:
        earlier = previous.event_ids if previous is not None else ()
        return cls.of(
            t.tps,
            t.ballot,
            t.revision,
            t.event_id,
            t.digest,
            t.votes,
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
        return Decision.DUPLICATE if t.digest == current.digest else Decision.CONFLICT
    return Decision.APPLIED
