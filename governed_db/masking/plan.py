"""Turning lineage into maskers for one identity: the plan built once per result.

Rules, per result column:

* plain column of a sensitive source -> that column's strategy;
* several plain sources (UNION) -> their common strategy, or ``redact`` when they differ;
* an expression over a sensitive column -> ``redact`` (no encoding of it may pass);
* a whole row / JSON of a table with sensitive columns -> those fields masked inside the
  JSON, or the whole value when it is not JSON;
* untraced, or from a table whose catalog cannot be read -> value-based detection, and
  the name's label when the name says what it is (fail closed).

A grant (``masking.unmask``) for the identity lifts the mask of what it covers.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from governed_db.identity import Identity
from governed_db.masking import detect
from governed_db.masking.catalog import table_key
from governed_db.masking.classify import OBSERVED_TEXT, ColumnClass, classify_name, key_label
from governed_db.masking.config import Grant
from governed_db.masking.documents import record_items
from governed_db.masking.engine import UNREADABLE, MaskingState, StatementFacts
from governed_db.masking.lineage import Origin
from governed_db.masking.messages import scrub_diagnostic
from governed_db.masking.origins import COMPUTED_STAR, CONST, combine
from governed_db.masking.strategies import Masker
from governed_db.masking.strategies.redact import constant_for, is_date_label
from governed_db.masking.strategies.spans import scrub_text, scrub_value


class Access:
    """What one identity may see on one connection."""

    def __init__(self, state: MaskingState, identity: Identity) -> None:
        self.state = state
        self.grants: list[Grant] = state.grants(identity)
        #: a grant without label or column limits: nothing is masked for this identity
        self.everything = any(not g.labels and not g.columns for g in self.grants)

    def hidden(self, key: str, column: str) -> ColumnClass | None:
        """The column's class when it is masked for this identity; ``None`` when it is visible."""
        cls = self.state.column_class(key, column)
        if cls is None:
            return None
        if cls is not UNREADABLE and any(g.unmasks(key, column, cls.label or "") for g in self.grants):
            return None
        return cls

    def masks(self, key: str, column: str) -> bool:
        """True when ``key.column`` is masked for this identity in the sense of :meth:`is_masked` (a predicate on
        it would be refused). A column of a table whose catalog read failed is (decision 0269)."""
        cls = self.hidden(key, column)
        if cls is None:
            return False
        if cls is UNREADABLE:
            return self.blind(key)
        return not (cls.label == "FREE_TEXT" and not cls.reviewed and cls.confidence < OBSERVED_TEXT)

    def redacts(self, key: str, column: str) -> bool:
        """True when a value computed from ``key.column`` is masked whole (the placeholder, or NULL) for this
        identity, whatever it holds (not scanned, as a nearly empty table's text is)."""
        cls = self.hidden(key, column)
        return cls is not None and cls is not UNREADABLE and not cls.provisional

    def hidden_fields(self, key: str) -> dict[str, ColumnClass] | None:
        return self.hidden_of(key, self.state.table_classes(key))

    def hidden_of(self, key: str, classes: dict[str, ColumnClass] | None) -> dict[str, ColumnClass] | None:
        """The columns of ``classes`` (``key``'s, read earlier) hidden from this identity."""
        if classes is None:
            return None
        # a provisional stand-in (a text column of a nearly empty table) is scanned wherever its values go, not
        # hidden: whole rows and lost lineage over it are scanned, and its errors keep what scanning keeps
        return {
            c: cls
            for c, cls in classes.items()
            if not cls.provisional and not any(g.unmasks(key, c, cls.label or "") for g in self.grants)
        }

    def blind(self, key: str) -> bool:
        """Did the read of ``key``'s catalog fail (its columns, and what they hold, unknown; decision 0269)?"""
        info = self.state.tables.get(key)
        return info is not None and info.catalog_failed

    def reads_hidden(self, tables: Sequence[str], blind: bool = False) -> bool:
        """True when one of ``tables`` has a column masked for this identity, or columns nobody could read (lost
        lineage fails closed)."""
        return blind or any(self.hidden_fields(t) or self.blind(t) for t in tables)

    def is_masked(self, origin: Origin, tables: Sequence[str] = (), blind: bool = False) -> bool:
        """True when ``origin`` involves a value this identity must not see (for predicates).

        A value whose lineage was lost (``t AS s(a, b)`` over an unknown table, a FROM item sqlglot does not
        model) counts as masked when the statement reads a table with masked columns: it may be one of them.
        """
        if origin.kind == "const":
            return False
        if origin.lost and self.reads_hidden(tables, blind):
            return True
        for t, c in origin.sources:
            if self.masks(t, c):
                return True  # (text that merely might hold PII, a product description, may still be searched)
        for t in origin.rows:
            if self.blind(t):
                return True
            fields = self.hidden_fields(t)
            # a whole row decides as each of its columns would: text merely scanned (a product description,
            # a full-text table's body) may be searched; one whose sample held items may not (decision 0192)
            if fields and any(
                cls is UNREADABLE or cls.found or self.masks(t, c) for c, cls in fields.items()
            ):
                return True
        if origin.kind == "unknown" and origin.hint:
            by_name = classify_name("", origin.hint, None)
            return by_name is not None and by_name.label not in (None, "FREE_TEXT")
        return False


#: what an expression over a masked column may still return: text/bytes/JSON become a placeholder; a number,
#: boolean or date computed from a masked value (``length(email)``, ``full_name IS NOT NULL``) becomes NULL —
#: a type-aware constant there (0, false) would be a wrong answer that looks right
_KEEP_SHAPE = (str, bytes, bytearray, memoryview, dict, list, tuple)


def redact_masker(label: str) -> Masker:
    token = f"[{label}]"
    if is_date_label(label):

        def redact_date(value: Any) -> Any:
            # text computed from a masked date is NULL whatever its shape: a date held as text (SQLite) like any
            # derived date, since a placeholder would not load into a Date column — and any other text too, or
            # NULL-or-placeholder would say whether ``replace(dob, '-04-', '')`` still looks like a date
            if value is None or value.__class__ is str:
                return None
            return constant_for(value, token) if isinstance(value, _KEEP_SHAPE) else None

        return redact_date

    def redact(value: Any) -> Any:
        if value is None:
            return None
        if value.__class__ is str:
            return token
        return constant_for(value, token) if isinstance(value, _KEEP_SHAPE) else None

    redact.text_constant = token  # type: ignore[attr-defined]
    return redact


_DETECT_KEY = ("", "<detect>", "")


def detect_masker(state: MaskingState) -> Masker:
    """Value-based: a whole sensitive value gets its label's strategy; free text its spans (one per state)."""
    found = state.maskers.get(_DETECT_KEY)
    if found is None:
        found = state.maskers[_DETECT_KEY] = _detect_masker(state)
    return found


def _detect_masker(state: MaskingState) -> Masker:

    def detected(value: Any) -> Any:
        if value is None:
            return None
        if value.__class__ is str:
            if not detect.has_candidate(value):
                return value
            label = detect.whole_value_label(value)
            return state.label_masker(label)(value) if label else scrub_text(value)
        return scrub_value(value)

    return detected


def watch_masker(state: MaskingState, sources: frozenset[tuple[str, str]]) -> Masker | None:
    """For a result column that is the stored value of watched columns (decision 0268) or of scanned few-valued
    columns (decision 0295): a value their tables held
    when classified passes as it is (one set lookup); another is scanned like free text and has its tables
    classified again — at once when the scan masked it. ``None`` when no source is watched."""
    seen: set[Any] = set()
    keys: list[str] = []
    #: few-valued clear columns of tables the sample read in part (decision 0295): scanned alike, and a value the
    #: scan masks makes the column observed free text (nothing is sampled again: the sample would not see it)
    few: list[tuple[str, str]] = []
    for table, column in sorted(sources):
        info = state.tables.get(table)
        if info is not None and info.watch is not None and column in info.watch:
            seen.update(info.watch[column])
            keys.append(table)
        elif info is not None and info.scanned is not None and column in info.scanned:
            seen.update(info.scanned[column])
            few.append((table, column))
    if not keys and not few:
        return None
    scan = detect_masker(state)
    known = frozenset(seen)
    arrived = state.data_arrived
    found = state.personal_data_seen
    told = [False]  # innocent arrivals are told once per plan: re-classified on their schedule, not per value

    def watched(value: Any) -> Any:
        if value is None:
            return None
        try:
            if value in known:
                return value
        except TypeError:
            pass  # (a value that cannot be hashed: scanned)
        out = scan(value)
        masked = out is not value and out != value
        if masked or not told[0]:
            told[0] = True
            for key in keys:
                arrived(key, masked)
        if masked:
            for key, column in few:
                found(key, column)
        return out

    # the per-row function checks a text value against the set itself (no call per cell for what it held)
    watched.inline = ("({v} if ({v} := {r}).__class__ is str and {v} in {k} else {m}({v}))", {"k": known})  # type: ignore[attr-defined]
    return watched


def row_masker(fields: dict[str, Masker]) -> Masker:
    """Mask the sensitive fields inside a JSON row (``row_to_json``), or the whole value otherwise."""
    whole = redact_masker("ROW")

    def masked_doc(doc: Any) -> Any:
        if isinstance(doc, dict):
            return {
                k: (fields[str(k).lower()](v) if str(k).lower() in fields else scrub_value(v))
                for k, v in doc.items()
            }
        if isinstance(doc, list):
            return [masked_doc(v) for v in doc]
        # a row the driver decoded itself (asyncpg's Record in ``array_agg(c)``, a registered composite's
        # named tuple): its fields by name when it has names, else the whole row — never only scanned, which
        # finds no name or address
        named = record_items(doc)
        if named is not None:
            return masked_doc(named)
        return whole(doc) if isinstance(doc, tuple) else scrub_value(doc)

    def row(value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, (dict, list)):
            return masked_doc(value)
        if isinstance(value, (str, bytes)):
            try:
                doc = json.loads(value)
            except ValueError:
                return whole(value)
            if isinstance(doc, (dict, list)):
                return json.dumps(masked_doc(doc))
            return whole(value)
        named = record_items(value)
        return whole(value) if named is None else masked_doc(named)

    return row


def member_masker(path: tuple[str | int, ...], inner: Masker) -> Masker:
    """For the member of a document at ``path``: what the document's scan gives it — the value masked whole under
    the label of the first key on the path that names personal data (``contact`` → ``email``), else ``inner``.
    Below that key (``profile->'phone'->>'4155551201'``) the document shows one placeholder where the member
    would be: whether the member is there at all is hidden too, so it is that placeholder even when NULL
    (decision 0302)."""
    at = next((i for i, k in enumerate(path) if isinstance(k, str) and key_label(k)), None)
    if at is not None:
        token = f"[{key_label(str(path[at]))}]"  # whatever the value's JSON type, as inside the document
        if at < len(path) - 1:
            return always_masker(token)
        return lambda value: None if value is None else token
    return inner


def always_masker(token: str) -> Masker:
    """One placeholder whatever the value, NULL included: for a value whose NULL-ness and type the document's
    masking hides (decision 0302)."""
    return lambda value: token


def _label(real: Sequence[tuple[str, str, ColumnClass]], default: str) -> str:
    """The label a value computed from several masked columns is redacted under: not a date's when there is
    another (text from a date is NULL whatever it holds, decision 0243; ``dob || ' ' || full_name`` is a name)."""
    labels = [cls.label for _, _, cls in real if cls.label]
    return next((label for label in labels if not is_date_label(label)), labels[0] if labels else default)


def _masker_for(
    origin: Origin, name: str, access: Access, tables: Sequence[str], blind: bool = False
) -> Masker | None:
    found = _masker_of(origin, name, access, tables, blind)
    state = access.state
    if (
        found is None
        or origin.kind == "column"
        or state.dialect != "sqlite"
        or origin.member is not None
        or origin.from_member
    ):
        return found
    hidden = [(t, c) for t, c in origin.sources if access.redacts(t, c)]
    if hidden and any(state.affinity(t, c) not in ("TEXT", None) for t, c in hidden):
        # computed from a SQLite column that stores each value as the type it converts to: the result's type
        # (a number, NULL here; text, the placeholder) followed the value's (``coalesce(pin, 1)``), so every
        # value but NULL is the placeholder (decision 0422)
        real = [(t, c, cls) for t, c in hidden if (cls := access.hidden(t, c)) is not None]
        label = _label(real, "SENSITIVE")
        if not is_date_label(label):  # text computed from a date is NULL whatever it holds (decision 0243)
            return _placeholder_or_null(f"[{label}]")
    return found


def _placeholder_or_null(token: str) -> Masker:
    def placeholder(value: Any) -> Any:
        return None if value is None else token

    return placeholder


def _masker_of(
    origin: Origin, name: str, access: Access, tables: Sequence[str], blind: bool = False
) -> Masker | None:
    state = access.state
    if origin.kind == "const":
        return None
    hits: list[tuple[str, str, ColumnClass]] = []
    for t, c in sorted(origin.sources):
        cls = access.hidden(t, c)
        if cls is not None:
            hits.append((t, c, cls))
    real = [h for h in hits if h[2] is not UNREADABLE]
    unreadable = len(real) < len(hits)
    row_fields: dict[str, Masker] = {}
    row_unknown = False
    for t in sorted(origin.rows):
        fields = access.hidden_fields(t)
        if fields is None:
            row_unknown = True
            continue
        for c, cls in fields.items():
            row_fields[c] = state.masker(t, c, cls)
    if (
        real
        # not one whose values are unknown (its sample failed: it may not decide rows either), whose cut of an
        # SSN (``substr(info, 1, 3)``) no scan recognises (decision 0408)
        and all(cls.provisional and not access.masks(t, c) for t, c, cls in real)
        and origin.kind != "column"
        and not row_fields
        and not row_unknown
    ):
        # expressions over text of a nearly empty table: scanned like free text, not redacted (nothing says yet
        # that it holds personal data); a found item still tells the state that data has arrived. Not when a
        # whole row with masked fields is in the value too (``c.city || to_jsonb(c)::text``, decision 0230)
        scan = detect_masker(state)
        if origin.from_member:
            # computed from a member: its NULL-ness may say what the document hides (decision 0302)
            return always_masker(f"[{_label(real, 'SENSITIVE')}]")
        return state.watching(real[0][0], member_masker(origin.member, scan) if origin.member else scan)
    if origin.kind == "column" and not origin.rows:
        if real:
            labels = {cls.label for _, _, cls in real}
            t, c, cls = real[0]
            # a keyed strategy for stored values of masked columns only: next to a constant or a column that
            # is not masked (``UNION ALL SELECT '<guess>'``), a keyed hash would hash the caller's guess
            # (decision 0236)
            chosen = origin.mixed or len(hits) < len(origin.sources)
            if len(labels) == 1 and not unreadable and not (chosen and state.keyed(t, c, cls)):
                return state.masker(t, c, cls)
            return redact_masker(_label(real, "SENSITIVE"))
        # a clear column of a table the sample read whole: values it did not hold then are scanned (decision 0268)
        return detect_masker(state) if unreadable else watch_masker(state, origin.sources)
    if origin.kind == "expr" and not origin.rows:
        if real:
            if origin.member is not None and len(real) == 1 and len(hits) == len(origin.sources):
                t, c, cls = real[0]
                if state.masker(t, c, cls) is scrub_value:
                    # a member of a document the column's strategy scans (``profile->>'tier'``): masked as that
                    # strategy masks it inside the whole document — a key that names personal data masks its
                    # value whole, anything else is scanned (decision 0301)
                    return member_masker(origin.member, scrub_value)
            if origin.member is not None or origin.from_member:
                # a member of a document masked whole, or a value computed from a member: whether it is NULL,
                # and its type, would say what the document's masking hides (decision 0302)
                return always_masker(f"[{_label(real, 'SENSITIVE')}]")
            return redact_masker(_label(real, "SENSITIVE"))
        if origin.member is not None and not unreadable and watch_masker(state, origin.sources) is not None:
            # a member of a clear document of a table the sample read whole: its values are scanned as the
            # document's would be when they arrived since (decision 0268; a STRUCT's field, decision 0404)
            return member_masker(origin.member, detect_masker(state))
        if origin.member is not None or origin.from_member:
            return always_masker("[SENSITIVE]") if unreadable else None
        return detect_masker(state) if unreadable else None
    if origin.kind == "expr" and origin.rows:
        # computed from a whole row (keys renamed, text cut...): fields cannot be found by name any more
        if real or row_fields:
            return redact_masker(_label(real, "ROW"))
        return detect_masker(state) if row_unknown or unreadable else None
    if origin.kind == "row" or (origin.rows and origin.kind != "unknown"):
        if real:
            return redact_masker(_label(real, "SENSITIVE"))
        if row_fields:
            return row_masker(row_fields)
        return detect_masker(state) if row_unknown or unreadable else None
    # unknown: the name may still say what it is; otherwise check values as they pass
    if real or row_fields:
        return redact_masker(_label(real, "SENSITIVE"))
    if origin.lost and access.reads_hidden(tables, blind):
        # lineage lost over a table with masked columns (``#4``, ``reverse(v)`` over an untraced source):
        # detection is defeated by any reversible transformation, so the value is masked whole
        return redact_masker("SENSITIVE")
    hint = origin.hint or name
    for t in tables:
        cls = access.hidden(t, hint)
        if cls is not None and cls is not UNREADABLE:
            return state.masker(t, hint, cls)
    by_name = classify_name("", hint, None)
    if by_name is not None and by_name.label and by_name.label != "FREE_TEXT":
        return state.label_masker(by_name.label)
    return detect_masker(state)


def origins_for(names: Sequence[str], facts: StatementFacts) -> tuple[list[Origin], list[str]]:
    """One origin per result column, matched to the description."""
    lin = facts.lineage
    if facts.explain is not None and lin is not None:
        return [facts.explain for _ in names], list(lin.tables)
    if lin is None or lin.outputs is None:
        return [Origin("unknown", hint=n) for n in names], []
    tables = list(lin.tables)
    if lin.exact and len(lin.outputs) == len(names):
        return [o.origin for o in lin.outputs], tables
    # two outputs of one name (``SELECT COLUMNS('ssn') AS city, city``: the database names columns as it
    # likes) are told apart by neither: each result column of that name may hold either
    named: dict[str, list[Origin]] = {}
    for o in lin.outputs:
        if o.name not in ("*", COMPUTED_STAR):
            named.setdefault(o.name.lower(), []).append(o.origin)
    by_name = {n: found[0] if len(found) == 1 else combine(found) for n, found in named.items()}
    # ``SELECT *`` over a table of unknown columns: each result column is that table's column of its name
    star_tables = [t for o in lin.outputs if o.name == "*" and o.origin.kind == "row" for t in o.origin.rows]
    stars = [o.origin for o in lin.outputs if o.name in ("*", COMPUTED_STAR)]
    # ``SELECT * FROM jsonb_each(to_jsonb(c))``: the database names a function's columns (``key``, ``value``), and
    # any result column may be one of them, computed from what the function reads (decision 0229)
    computed = [_computed(o.origin) for o in lin.outputs if o.name == COMPUTED_STAR and o.origin.kind != "const"]
    # how often each name is an output of the statement's own, and how often the database gave it: a name it
    # gave more often may be a function's column too
    counts = {n: len(found) for n, found in named.items()}
    given: dict[str, int] = {}
    for n in names:
        given[n.lower()] = given.get(n.lower(), 0) + 1
    # outputs the database names after their text (``upper(ssn)``, ``ssn[1]``; a struct's ``s.*`` beside them):
    # any result column no named output accounts for may be one of them (decision 0377)
    unnamed = [o.origin for o in lin.outputs if not o.name]
    out: list[Origin] = []
    for n in names:
        found = by_name.get(n.lower())
        # more result columns of this name than outputs of the statement's own so named: one is a star's or an
        # unnamed output's. ``SELECT s.*, 'x' AS a`` where the struct ``s`` has a field ``a`` gives two columns
        # ``a``, one the constant's, one the struct's (decision 0376)
        beyond = given[n.lower()] > counts.get(n.lower(), 0)
        if found is not None and beyond and stars:
            found = combine([found, *(s for s in stars if s.kind != "const")])
        if found is None and stars and all(s.kind == "const" for s in stars):
            # ``SELECT * FROM pragma_table_info('t')``: every column the stars stand for is made of constants
            found = CONST
        elif found is None and len(star_tables) == 1 and not computed:
            found = Origin("column", frozenset({(table_key(star_tables[0]), n.lower())}))
        elif found is None and star_tables:
            found = Origin("unknown", frozenset((table_key(t), n.lower()) for t in star_tables), hint=n)
        elif found is None and stars:
            # columns the database names from what the stars are made of (a PIVOT's cells, json_each's key
            # and value): each may be any of them
            found = combine(stars)
        if unnamed and beyond:
            found = combine([*unnamed, *([found] if found is not None else [])])
        if computed and (found is None or given[n.lower()] > counts.get(n.lower(), 0)):
            found = _computed(combine([*computed, *([found] if found is not None else [])]))
        out.append(found if found is not None else Origin("unknown", hint=n))
    return out, tables


def _computed(origin: Origin) -> Origin:
    """A value a function computed from ``origin``: a whole row in it no longer has its fields by name."""
    if origin.kind in ("column", "row"):
        return Origin("expr", origin.sources, origin.rows)
    return origin


def diagnostics_masker() -> Masker:
    """``SHOW WARNINGS`` messages quote values of earlier statements (``Truncated incorrect DOUBLE value:
    'Alice Smith'``): blank what they quote, as for error messages; the optimizer's rewritten statement, which
    quotes the rows an EXPLAIN read by key, is withheld whole."""
    def message(value: Any) -> Any:
        return scrub_diagnostic(value) if isinstance(value, str) else value

    return message


def computed_positions(
    names: Sequence[str], facts: StatementFacts, maskers: Sequence[Masker | None]
) -> frozenset[int]:
    """The masked result columns whose value is computed by the statement (not a column's stored value as it
    is): what they hold — valid text or not, for one — may depend on a masked value and a guess."""
    if facts.diagnostics:
        return frozenset()
    origins, _ = origins_for(names, facts)
    return frozenset(
        i
        for i, (o, m) in enumerate(zip(origins, maskers, strict=True))
        if m is not None and (o.kind != "column" or o.rows)
    )


def build_maskers(names: Sequence[str], facts: StatementFacts, access: Access) -> list[Masker | None]:
    if facts.diagnostics:
        return [diagnostics_masker() if n.lower() == "message" else None for n in names]
    if facts.schema:
        return [None] * len(names)
    origins, tables = origins_for(names, facts)
    blind = facts.lineage is not None and facts.lineage.blind
    return [_masker_for(o, n, access, tables, blind) for o, n in zip(origins, names, strict=True)]
