"""What one batch decides: the rows of one run of consecutive offsets of one topic partition.

The pipeline fills it (pure); the ClickHouse sink writes it. Kept in the core so that deciding never
needs the edge that writes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from streams.core.aggregate import TotalsDelta
from streams.core.rows import CurrentRow, DecisionRow, ForwardRow, RejectionRow


@dataclass
class Batch:
    """The rows decided from one run of consecutive offsets of one topic partition."""

    topic: str
    partition: int
    first_offset: int
    last_offset: int
    totals: TotalsDelta = field(default_factory=TotalsDelta)
    current: list[CurrentRow] = field(default_factory=list)
    decisions: list[DecisionRow] = field(default_factory=list)
    rejections: list[RejectionRow] = field(default_factory=list)
    # Records whose home is another partition: (home partition, the message), to be sent there
    # before this batch's offsets are acked, and their rows for tally_forwards.
    forward: list[tuple[int, Any]] = field(default_factory=list)
    forwards: list[ForwardRow] = field(default_factory=list)
