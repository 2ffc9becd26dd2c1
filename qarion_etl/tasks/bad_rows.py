"""Bad input rows: what one is, what a task does about them, and the error that names them.

A bad row is a row of an input file that cannot be loaded as it is: a value that does not
convert to its column's type, a missing required value, a row of the wrong width, a
malformed CSV record or JSON line. The readers do not stop at the first one; they report
every bad row to a ``BadRows`` collector and go on, so the whole file is checked before
anything is published. What happens then is the task's ``on_bad_rows`` policy
(``[tasks.config]``):

- ``"fail"`` (the default): any bad row fails the task;
- ``"skip"``: the good rows load, the bad ones are counted (``rows_rejected``);
- ``"quarantine"``: as ``skip``, and each bad row is written to ``<target>__rejects``
  (``REJECTS_COLUMNS``) in the same transaction or swap as the landing table.

With ``max_bad_rows = N``, more than N bad rows fail the task even with ``skip`` or
``quarantine``. A failing task raises ``BadRowsError``, an ``IngestError`` (nothing a
retry can mend), whose message names up to ``NAMED_ROWS`` rows and the total::

    data/orders.csv: 3 bad rows:
      data/orders.csv:5: column 'value': 'oops' is not a valid float
      data/orders.csv:8: column 'id': missing required value
      data/orders.csv:9: expected 2 fields, found 3

A problem with the file as a whole (no header, a missing declared column, text that is
not valid in its encoding) is not a bad row: it fails the task whatever the policy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from qarion_etl.errors import IngestError

#: How many bad rows a message names (the rest are counted).
NAMED_ROWS = 10
#: The rejects table of a landing table ``t`` is ``t__rejects``, in the same namespace.
REJECTS_SUFFIX = "__rejects"
#: The columns of a rejects table, with their flow schema types.
REJECTS_COLUMNS: tuple[tuple[str, str], ...] = (
    ("source_file", "string"),
    ("line", "integer"),
    ("column_name", "string"),
    ("reason", "string"),
    ("raw_text", "string"),
    ("batch_id", "integer"),
)
#: The raw text kept of one rejected row (MySQL's TEXT holds 64 KB).
RAW_TEXT_LIMIT = 16_000

Policy = Literal["fail", "skip", "quarantine"]


def rejects_table(target: str) -> str:
    """The name of the rejects table of landing table ``target``."""
    return f"{target}{REJECTS_SUFFIX}"


@dataclass(frozen=True, slots=True)
class BadRow:
    """One row that cannot be loaded.

    Attributes:
        line: where it starts in the file, as an editor counts lines (the CSV header is
            line 1); the row number for formats without lines (Parquet).
        column: the column at fault, or ``None`` for a problem of the whole row.
        reason: what is wrong, without the location (``'oops' is not a valid float``).
        raw: the row's text in the file, without its line ending.
    """

    line: int
    column: str | None
    reason: str
    raw: str | None = None

    def describe(self, shown: str, *, by_row: bool = False) -> str:
        """``data/x.csv:5: column 'value': 'oops' is not a valid float``."""
        where = f"{shown}: row {self.line}" if by_row else f"{shown}:{self.line}"
        what = f"column '{self.column}': {self.reason}" if self.column else self.reason
        return f"{where}: {what}"

    def record(self, shown: str, batch_id: int) -> tuple[Any, ...]:
        """The row of the rejects table (``REJECTS_COLUMNS``) for this bad row."""
        raw = self.raw if self.raw is None else self.raw[:RAW_TEXT_LIMIT]
        return (shown, self.line, self.column, self.reason, raw, batch_id)


@dataclass(frozen=True, slots=True)
class BadRowPolicy:
    """A task's ``on_bad_rows`` and ``max_bad_rows``."""

    mode: Policy = "fail"
    max_rows: int | None = None

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> BadRowPolicy:
        """Read the policy from ``[tasks.config]`` (flow validation has checked the values)."""
        return cls(config.get("on_bad_rows", "fail"), config.get("max_bad_rows"))

    @property
    def quarantine(self) -> bool:
        return self.mode == "quarantine"

    @property
    def tolerated(self) -> int | None:
        """How many bad rows the task survives (``None``: any number)."""
        return 0 if self.mode == "fail" else self.max_rows


@dataclass
class BadRows:
    """Collects the bad rows of one file while it is read.

    Counts every bad row, keeps the first ``NAMED_ROWS`` for the message and, when the
    policy quarantines them, keeps the others in ``pending`` until the loader writes them
    (``drain``) after each batch. Once the task is bound to fail (``doomed``), no more rows
    are kept: the rest of the file is only counted.
    """

    shown: str
    policy: BadRowPolicy = field(default_factory=BadRowPolicy)
    by_row: bool = False
    count: int = 0
    named: list[BadRow] = field(default_factory=list)
    pending: list[BadRow] = field(default_factory=list)

    def add(self, row: BadRow) -> None:
        self.count += 1
        if len(self.named) < NAMED_ROWS:
            self.named.append(row)
        if self.policy.quarantine and not self.doomed:
            self.pending.append(row)

    def add_counted(self, first: list[BadRow], total: int) -> None:
        """Bad rows counted elsewhere (by the engine): the first ones and how many in all."""
        self.count += total
        self.named.extend(first[: NAMED_ROWS - len(self.named)])

    @property
    def doomed(self) -> bool:
        """More bad rows than the policy tolerates: the task will fail."""
        limit = self.policy.tolerated
        return limit is not None and self.count > limit

    def drain(self) -> list[BadRow]:
        """The bad rows to quarantine since the last call."""
        rows, self.pending = self.pending, []
        return rows

    def check(self) -> None:
        """Raise ``BadRowsError`` when the policy says these bad rows fail the task."""
        if self.doomed:
            raise BadRowsError(self.shown, self.count, self.named, self.policy, by_row=self.by_row)


class BadRowsError(IngestError):
    """Bad rows fail an ingestion: the message names up to ``NAMED_ROWS`` and the count.

    Attributes:
        count: how many bad rows the file has.
        rows: the ``BadRow`` named in the message (the first ones, in file order).
    """

    def __init__(
        self,
        shown: str,
        count: int,
        rows: list[BadRow],
        policy: BadRowPolicy,
        *,
        by_row: bool = False,
    ) -> None:
        self.count = count
        self.rows = list(rows)
        super().__init__(_message(shown, count, self.rows, policy, by_row), path=shown)


def _message(shown: str, count: int, rows: list[BadRow], policy: BadRowPolicy, by_row: bool) -> str:
    head = f"{count:,} bad row{'' if count == 1 else 's'}"
    if policy.mode != "fail" and policy.max_rows is not None:
        head += f", more than max_bad_rows = {policy.max_rows:,}"
    lines = [f"{head}:", *(f"  {r.describe(shown, by_row=by_row)}" for r in rows)]
    if count > len(rows):
        lines.append(f"  … and {count - len(rows):,} more")
    return "\n".join(lines)
