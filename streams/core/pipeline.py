"""One batch of one partition through the stages: home? -> decode -> authenticate -> validate ->
decide -> aggregate -> rows. A record whose TPS's home is another partition is set aside to be
forwarded there.

No Kafka and no ClickHouse here: the applied state of a partition is handed in once, by `preload`
when the partition is assigned (from `tally_current`, plus the revisions region_totals already
includes where a crash left it ahead), and the result is a `Batch` for the sink. A bad event
becomes a rejection row; nothing in an event can make `process` raise.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from streams.core.batch import Batch
from streams.core.contract import MAX_EVENT_BYTES, Decoded, Tally, decode_tally
from streams.core.placement import home_of
from streams.core.reasons import Decision, Finding, Flag, Reason, reason_codes
from streams.core.registry import Registry
from streams.core.revisions import Applied, counted, decide
from streams.core.rows import CurrentRow, DecisionRow, ForwardRow, RejectionRow
from streams.core.signatures import DeviceKey, KeyRing, Signed, prepare_signature
from streams.core.state import AppliedState
from streams.core.validate import Verdict, cross_ballot_flag, validate_tally

Key = tuple[str, str]  # (ballot, tps)
KEY_CHARS = 256  # of a Kafka key kept in the audit trail (a TPS code has 13)
# Starts the Ed25519 checks of a batch and returns how to wait for their findings, in order. The
# worker runs them on threads (libsodium releases the GIL) while this thread validates the batch.
Verifier = Callable[[Sequence[Signed]], Callable[[], list[Finding | None]]]


def verify_here(jobs: Sequence[Signed]) -> Callable[[], list[Finding | None]]:
    """The serial verifier: every check on the calling thread, before it returns."""
    findings = [job.verify() for job in jobs]
    return lambda: findings


@dataclass(frozen=True, slots=True)
class Message:
    offset: int
    value: bytes
    timestamp: float = 0.0  # Kafka message timestamp, epoch seconds
    key: bytes | None = (
        None  # Kafka message key: must be the event's tps; None where the source has no key
    )
    via: str = (
        ""  # for a forwarded copy, the position it was first received at ("<partition>:<offset>")
    )
    seen_at: float = 0.0  # when a worker read it, epoch seconds, on the worker's clock

    @property
    def judged_at(self) -> float:
        """The moment a key's revocation is judged by: when a worker read the record, or its Kafka
        timestamp if that is later. The producer sets the timestamp (CreateTime): it may make a
        record later, never earlier than the worker saw it, so a record backdated before a
        revocation is refused all the same."""
        return max(self.timestamp, self.seen_at)

    @property
    def key_text(self) -> str:
        """The key as the audit trail keeps it: text, cut at KEY_CHARS."""
        return (self.key or b"")[:KEY_CHARS].decode("utf-8", "replace")


class Processor:
    """Decides each event against the applied state; keeps a cache of that state for its
    partitions."""

    def __init__(
        self,
        registry: Callable[[], Registry | None],
        require_signatures: bool = True,
        log_events: bool = True,
        verifier: Verifier = verify_here,
        decoder: Callable[[bytes], Decoded] = decode_tally,
    ) -> None:
        self.registry = registry
        self.decoder = (
            decoder  # tests hand in the reference path (contract.decode_object) to compare
        )
        self.verifier = verifier
        self.require_signatures = require_signatures
        # Keep each applied event, as signed, in its change row: the transparency log's leaves.
        self.log_events = log_events
        self.state = AppliedState()
        # Keys whose totals already include revisions up to N that tally_current lacks (a crash came
        # between the two writes): replaying them updates the state but must not move totals again.
        self.in_totals: dict[Key, int] = {}
        # Partitions whose whole state is in `state` (loaded at assignment): a missing key has none.
        self.complete: set[int] = set()
        self.counts = {d.value: 0 for d in Decision}

    def forget(self) -> None:
        """Drop cached state (after a rebalance another worker may have moved it on)."""
        self.state.clear()
        self.in_totals.clear()
        self.complete.clear()

    def preload(
        self, partition: int, applied: Iterable[tuple[Key, Applied]], in_totals: dict[Key, int]
    ) -> None:
        """Take the whole state of a newly assigned partition ((key, applied) pairs, read as they
        come), each tally over its contest's choices: tally_current keeps no zero counts, so the
        choices read back differ from key to key, and a tuple of their own each would be held
        apart (`revisions.shared_choices`) and summed choice by choice."""
        registry = self.registry()

        def whole(pair: tuple[Key, Applied]) -> tuple[Key, Applied]:
            key, tally = pair
            contest = registry.contest_for(tally.ballot, tally.tps) if registry else None
            return key, tally.over(contest.choices if contest else None)

        self.state.update(map(whole, applied))
        self.in_totals.update(in_totals)
        self.complete.add(partition)

    def process(
        self, topic: str, partition: int, messages: Sequence[Message], partitions: int | None = None
    ) -> Batch:
        """Decide a run of consecutive offsets of one partition. With `partitions` (the topic's
        count), a record whose key has its home elsewhere is not decided here but put in
        `batch.forward`."""
        batch = Batch(topic, partition, messages[0].offset, messages[-1].offset)
        if partitions is not None:
            messages = self._keep_home(batch, messages, partitions)
        if partition not in self.complete:
            # Deciding without the partition's state would count a TPS again: a bug, never input.
            raise RuntimeError(f"partition {partition} was not preloaded; its state is unknown")
        if not messages:
            return batch
        decoded = [self.decoder(m.value) for m in messages]
        registry = self.registry()
        forgeries, verdicts = self._check(messages, decoded, registry)
        for message, result, forged, verdict in zip(
            messages, decoded, forgeries, verdicts, strict=True
        ):
            tally = result.tally
            if tally is None:
                self._reject(batch, message, result.findings, result)
                continue
            if message.key is not None and message.key != tally.tps.encode():
                found = Finding(
                    Reason.KEY_MISMATCH,
                    "$.tps",
                    f"message key {message.key[:32]!r} is not the tps {tally.tps}",
                )
                self._reject(batch, message, (found,), result)
                continue
            assert verdict is not None  # made for every decoded tally above
            if forged is not None or not verdict.accepted:
                # Every code that applies, authenticity first.
                found = ((forged,) if forged else ()) + verdict.findings
                self._reject(batch, message, found, result)
                continue
            self._decide(batch, message, tally, verdict)
        return batch

    def _check(
        self, messages: Sequence[Message], decoded: Sequence[Decoded], registry: Registry | None
    ) -> tuple[list[Finding | None], list[Verdict | None]]:
        """What does not depend on the state, for the whole batch first: the signature rules, then
        (while other threads do the Ed25519 arithmetic) the C1 equations and the registry. Per
        message: its authenticity finding (None: authentic, or not a tally) and its verdict."""
        keys: KeyRing | dict[str, DeviceKey] = registry.keys if registry else {}
        checks: list[Finding | Signed | None] = []
        for message, result in zip(messages, decoded, strict=True):
            tally = result.tally
            if tally is None or (message.key is not None and message.key != tally.tps.encode()):
                checks.append(None)  # rejected by the caller, before its signature counts
            else:
                checks.append(
                    prepare_signature(tally, keys, self.require_signatures, message.judged_at)
                )
        verified = self.verifier([c for c in checks if isinstance(c, Signed)])
        verdicts = [
            validate_tally(r.tally, registry) if r.tally is not None else None for r in decoded
        ]
        findings = iter(verified())
        return [next(findings) if isinstance(c, Signed) else c for c in checks], verdicts

    def _decide(self, batch: Batch, message: Message, tally: Tally, verdict: Verdict) -> None:
        """One authentic, valid tally against the state: its decision, and if applied, the totals
        it moves and its new current row."""
        key = (tally.ballot, tally.tps)
        current = self.state.get(key)
        decision = decide(current, tally)
        flags = [f.value for f in verdict.flags]
        if cross_ballot_flag(tally.ballot, tally.voters, self.state.voters(("PPWP", tally.tps))):
            flags.append(Flag.MORE_THAN_PPWP.value)
        if decision is Decision.APPLIED:
            new = Applied.from_tally(tally, current)
            if tally.revision > self.in_totals.get(key, 0):
                batch.totals.apply(
                    current,
                    new,
                    tally.gateway,
                    tally.forms.event.decode() if self.log_events else "",
                    f"{batch.partition}:{message.offset}",
                    tally.registered["dpt"],
                )
            elif tally.revision == self.in_totals[key]:
                del self.in_totals[key]  # the state has caught up with the totals
            self.state[key] = new
            batch.current.append(
                CurrentRow(
                    tally.ballot,
                    tally.tps,
                    tally.revision,
                    tally.event_id,
                    list(new.event_ids),
                    new.digest,
                    tally.gateway,
                    tally.submitted_at,
                    counted(tally.votes),
                    tally.invalid,
                    tally.voters,
                    tally.registered["dpt"],
                    flags,
                    batch.partition,
                    message.offset,
                )
            )
        self.counts[decision.value] += 1
        batch.decisions.append(
            DecisionRow(
                tally.event_id,
                tally.tps,
                tally.ballot,
                tally.revision,
                decision.value,
                [],
                flags,
                tally.gateway,
                tally.key_id or "",
                tally.submitted_at,
                batch.partition,
                message.offset,
                message.timestamp,
                message.key_text,
                message.via,
                message.judged_at,
                [],
            )
        )

    @staticmethod
    def _keep_home(batch: Batch, messages: Sequence[Message], partitions: int) -> list[Message]:
        """The messages decided in this partition; the others go home (placement.home_of)."""
        here = []
        for message in messages:
            home = home_of(message.key, batch.partition, partitions)  # one hash a record
            if home == batch.partition:
                here.append(message)
                continue
            batch.forward.append((home, message))
            batch.forwards.append(
                ForwardRow(
                    message.key_text, batch.partition, message.offset, message.timestamp, home
                )
            )
        return here

    def _reject(self, batch: Batch, message: Message, findings: Sequence, seen: object) -> None:
        reasons = reason_codes(findings)
        texts = [f.as_text() for f in findings]
        self.counts[Decision.REJECTED.value] += 1
        event_id, tps, ballot, gateway, key_id = (
            getattr(seen, k) for k in ("event_id", "tps", "ballot", "gateway", "key_id")
        )
        batch.rejections.append(
            RejectionRow(
                event_id,
                tps,
                ballot,
                gateway,
                reasons,
                texts,
                message.value[:MAX_EVENT_BYTES].decode("utf-8", "replace"),
                batch.partition,
                message.offset,
                message.timestamp,
                message.key_text,
            )
        )
        batch.decisions.append(
            DecisionRow(
                event_id or "",
                tps or "",
                ballot or "",
                0,
                Decision.REJECTED.value,
                reasons,
                [],
                gateway or "",
                key_id or "",
                "",
                batch.partition,
                message.offset,
                message.timestamp,
                message.key_text,
                message.via,
                message.judged_at,
                texts,
            )
        )
