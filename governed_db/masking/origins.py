"""The values lineage works with: where a value comes from (:class:`Origin`), a statement's result columns
and uses (:class:`Lineage`), and the sources and scopes of the walk over a query.

Kept apart from :mod:`governed_db.masking.lineage` (the walk) and :mod:`governed_db.masking.writes` (the
statements that write) so each stays readable.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from sqlglot import exp

#: (table key, column) of a real table
Ref = tuple[str, str]
#: table node -> (table key, its columns in order, or None when unknown)
ColumnsOf = Callable[[exp.Table], "tuple[str, list[str] | None]"]
#: name -> (result columns, whether their count is exact) of the CTEs in scope
Ctes = dict[str, "tuple[list[Output], bool]"]

QUERY = (exp.Select, exp.Union, exp.Intersect, exp.Except, exp.Subquery, exp.Values)


@dataclass(frozen=True, slots=True)
class Origin:
    kind: str  # column | expr | row | const | unknown
    sources: frozenset[Ref] = frozenset()
    #: tables whose whole row flows into the value
    rows: frozenset[str] = frozenset()
    #: the name as written, for columns nothing could resolve
    hint: str | None = None
    #: an ``unknown`` that is the result of a function or session variable whose inputs *are* traced
    #: (``sources``/``rows``); when False an ``unknown`` means the lineage itself was lost
    opaque: bool = False
    #: a ``column`` some of whose values are the statement's own constants (``SELECT ssn ... UNION ALL SELECT
    #: '<guess>'``): masked with the placeholder, never a strategy that maps equal inputs to equal outputs
    #: (a keyed hash of a guess next to the hash of the stored value says whether they are equal)
    mixed: bool = False
    #: a member of a JSON document column's stored value at a constant path (``profile->'contact'->>'email'``:
    #: ``("contact", "email")``), computed from the column like any expression; masked as the document's own
    #: masking would mask that member (decision 0301)
    member: tuple[str | int, ...] | None = None
    #: computed from such a member (``max(profile->>'k')``, ``coalesce(profile->'ssn', '1')``): whether it is
    #: NULL, and its JSON type, follow where the document's masking may hide them (a key the scan masks, what lies
    #: under a key that names personal data, a document masked whole), so it is masked to one constant, NULL
    #: included (decision 0302)
    from_member: bool = False
    #: a value whose length the statement lets the caller choose past any small bound (``repeat('x', n)``, a
    #: long literal, a bind parameter, an aggregate that concatenates rows), or that holds one: merged with a
    #: masked value into one value it measures it against a length limit (decision 0285)
    long: bool = False

    @property
    def traced(self) -> bool:
        return self.kind != "unknown"

    @property
    def lost(self) -> bool:
        """The walk could not follow this value: over a sensitive table it is masked and never a predicate."""
        return self.kind == "unknown" and not self.opaque


CONST = Origin("const")
#: a constant whose length the caller chooses (``repeat('x', 268435400)``)
LONG_CONST = Origin("const", long=True)
#: the name of the output a ``*`` gives for a table function, ``ROWS FROM`` or another FROM item whose columns the
#: database names and counts (``jsonb_each(x)`` yields ``key`` and ``value``): unlike a table's ``*`` (output
#: ``"*"``, its columns looked up by name in the table), each column it stands for is computed from its origin
COMPUTED_STAR = "*()"


def combine(origins: Iterable[Origin], kind: str = "expr") -> Origin:
    sources: set[Ref] = set()
    rows: set[str] = set()
    unknown = False
    opaque = True
    hint = None
    mixed = False
    from_member = False
    long = False
    for o in origins:
        sources |= o.sources
        rows |= o.rows
        from_member = from_member or o.member is not None or o.from_member
        long = long or o.long
        mixed = mixed or o.mixed or (kind == "column" and o.kind == "const")
        if o.kind == "unknown":
            unknown = True
            opaque = opaque and o.opaque
            hint = hint or o.hint
    if unknown:
        return Origin("unknown", frozenset(sources), frozenset(rows), hint, opaque, from_member=from_member, long=long)
    if not sources and not rows:
        return LONG_CONST if long else CONST
    return Origin(
        "row" if rows and kind != "column" else kind, frozenset(sources), frozenset(rows), mixed=mixed,
        from_member=from_member, long=long,
    )


@dataclass(frozen=True, slots=True)
class Output:
    name: str
    origin: Origin


@dataclass(frozen=True, slots=True)
class Written:
    """One table a statement changes: ``kind`` is insert, update or delete (a REPLACE is both an insert and a
    delete); ``columns`` are those given a value other than NULL or DEFAULT (``None``: not known which, so any);
    ``touched``, for an update, those it sets at all (``SET email = NULL`` changes a key a child row points at);
    ``defaulted`` those given their DEFAULT (by the word, or, in an INSERT, by being left out): a value when the
    column's default is one (``DEFAULT '000-00-0000'``), which only the catalog can tell. ``grows``, for an update:
    the most bytes its values may put in a row, not counting parameters (``None``: no bound the text shows), and
    ``sized`` whether its parameters' bytes count too (:mod:`governed_db.masking.row_length`); ``copies``, the
    columns it copies whose longest stored value counts too when it runs, as (table key, the table as the statement
    spells it, by its parts, column) (decision 0413)."""

    table: str
    kind: str
    columns: frozenset[str] | None
    touched: frozenset[str] | None = frozenset()
    defaulted: frozenset[str] = frozenset()
    grows: int | None = 0
    sized: bool = False
    copies: tuple[tuple[str, tuple[str, ...], str], ...] = ()

    @property
    def changed(self) -> frozenset[str] | None:
        """The columns whose stored value the write may change (``None``: any)."""
        if self.columns is None or self.touched is None:
            return None
        return self.columns | self.touched


@dataclass
class Lineage:
    #: result columns in order; ``None`` when the statement's result shape is not known
    outputs: list[Output] | None = None
    #: False when a ``*`` over a table of unknown columns made the count uncertain
    exact: bool = True
    #: (clause, origin) for every column used to filter, join, sort, group or copied
    uses: list[tuple[str, Origin]] = field(default_factory=list)
    #: table key -> SQL to reference it (as written), for every real table read
    tables: dict[str, str] = field(default_factory=dict)
    #: the statement reads data through SQL built at run time (DuckDB ``query(expr)``): what it reads is
    #: unknown, so every lost value in it is treated as sensitive
    blind: bool = False
    #: the tables the statement changes and how (:mod:`governed_db.masking.constraints` turns them into uses)
    writes: list[Written] = field(default_factory=list)
    #: tables read or written through MySQL's ``PARTITION (p0, ...)``: the rows of the partitions named, which
    #: the partitioning expression picks (:func:`governed_db.masking.constraints.partition_uses`)
    partitioned: list[str] = field(default_factory=list)
    #: every column reference the walk resolved, with what it resolved to (``n`` of ``(SELECT notes AS n ...)``
    #: is ``notes``): where a column is used, judged by the node around it (free-text searches, decision 0192)
    refs: list[tuple[exp.Column, Origin]] = field(default_factory=list)
    #: tables whose known columns lack a name the statement uses: their catalog may be out of date (a column
    #: added by another connection), so they are read again before the statement is judged (decision 0251)
    missing: set[str] = field(default_factory=set)
    #: tables whose columns the statement's own top-level star lists as they were read: a result with a column
    #: they lack makes them read again before its rows are masked (decision 0259)
    listed: set[str] = field(default_factory=set)
    #: GROUP BY / DISTINCT uses of plain columns, each with its table and the columns of the same table reference
    #: grouped beside it: ``(use, table, columns)``, ``use`` being the very tuple in :attr:`uses`. A masked column
    #: grouped beside a key of its own row decides no group (decision 0283)
    keyed: list[tuple[tuple[str, Origin], str, frozenset[str]]] = field(default_factory=list)


@dataclass
class Source:
    alias: str
    table: str | None
    columns: list[tuple[str, Origin]] | None
    #: the table's rows as stored, one per key value (not its history ``FOR SYSTEM_TIME``, a sample...)
    plain: bool = False

    def find(self, name: str) -> Origin | None:
        if self.columns is None:
            return None
        for n, o in self.columns:
            if n == name:
                return o
        return None

    def whole_row(self) -> Origin:
        if self.table is not None:
            return Origin("row", rows=frozenset({self.table}))
        if self.columns is None:
            return Origin("unknown")
        return combine((o for _, o in self.columns), kind="row")


@dataclass
class Scope:
    sources: list[Source]
    parent: Scope | None = None
    projections: list[Output] = field(default_factory=list)
    #: the first output position a star the database expands (``COLUMNS('re')``, ``* EXCLUDE``, a star over
    #: unknown columns) may have shifted: ``ORDER BY 2`` from there on may name any of the later outputs
    shifted_from: int | None = None
    #: positions of outputs computed by an aggregate of this query (``max(ssn)``): DuckDB's ``GROUP BY ALL``
    #: groups by every other output
    aggregated: frozenset[int] = frozenset()


def computed_columns(src: Source) -> bool:
    """Whether a FROM item's columns are a function's (its first column is the ``*`` the database expands)."""
    return computed_star(src) is not None


def computed_star(src: Source) -> Origin | None:
    """What the columns of a FROM item the database names are made of (``None``: no such item)."""
    if src.table is None and src.columns and src.columns[0][0] == "*":
        return src.columns[0][1]
    return None


def star_outputs(outputs: list[Output]) -> list[Output]:
    """A ``*`` over a FROM item whose columns a function yields: its ``*`` is no table's own (decision 0229)."""
    return [Output(COMPUTED_STAR, o.origin) if o.name == "*" else o for o in outputs]
