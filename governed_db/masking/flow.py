"""What a masked value may pass through on its way to the result without being an oracle.

Non-interference (docs/decisions/0095): a masked value may only leave the database as itself, masked. Any
computation on it that can *decide* something — which rows, how many, in what order, or whether an error
happens — lets a guess be checked one character at a time, whatever the output looks like. The lineage walk
records such computations as *uses* (refused by the guard when the value is masked for the identity).

This module answers one question for the walk: can this node, given a masked value in its arguments, fail,
yield a different number of rows, or compare? A function is accepted only when it is known to be *total* on
any text (``upper``, ``substr``, ``||``, casts to text, ``max``, ``json_agg``...); its result is then a
derived value, masked whole at the output. Everything else — casts to numbers, dates, ``bytea``, XML,
``regclass``; JSON parsing; regular expressions whose pattern is the value; date units; set-returning
functions over a value; any function governed_db does not know — is a use, and so refused over a masked value
(fail closed: an unknown function is assumed able to fail).
"""

from __future__ import annotations

import re

from sqlglot import exp

#: nodes that only carry or rearrange values: no failure, no row decided by what they hold
_CARRIERS: tuple[type[exp.Expression], ...] = tuple(
    c
    for c in (
        exp.Alias,
        exp.Paren,
        exp.Column,
        exp.Literal,
        exp.Null,
        exp.Boolean,
        exp.Star,
        exp.Placeholder,
        exp.Parameter,
        exp.Identifier,
        exp.Var,
        exp.DataType,
        exp.Tuple,
        exp.Array,
        getattr(exp, "Struct", None),
        exp.Bracket,
        exp.Dot,
        exp.DPipe,
        exp.Case,
        exp.If,
        exp.Window,
        exp.WindowSpec,
        exp.Ordered,
        exp.Order,
        exp.Filter,
        exp.Where,
        exp.Distinct,  # recorded by the walk as a DISTINCT use
        exp.PropertyEQ,
        exp.Kwarg,
        exp.Collate,
        getattr(exp, "JSONKeyValue", None),
        getattr(exp, "IgnoreNulls", None),
        getattr(exp, "RespectNulls", None),
        getattr(exp, "Separator", None),
        getattr(exp, "Rollup", None),  # grouping: recorded by the walk as a GROUP BY use
        getattr(exp, "Cube", None),
        getattr(exp, "GroupingSets", None),
    )
    if c is not None
)

#: functions total on any text value: the result is a derived value (masked whole), never an error or a row
_TOTAL: tuple[type[exp.Expression], ...] = tuple(
    c
    for c in (
        exp.Upper,
        exp.Lower,
        exp.Initcap,
        exp.Substring,
        getattr(exp, "Replace", None),
        exp.Trim,
        exp.Length,
        exp.MD5,
        exp.SHA,
        exp.SHA2,
        exp.Coalesce,
        exp.Max,
        exp.Min,
        exp.Count,
        exp.GroupConcat,
        exp.ArrayAgg,
        exp.JSONArrayAgg,
        getattr(exp, "JSONObjectAgg", None),
        exp.JSONObject,
        getattr(exp, "JSONArray", None),
        exp.Left,
        exp.Right,
        getattr(exp, "Ascii", None),
        exp.Concat,
        exp.ConcatWs,
        getattr(exp, "Reverse", None),
        exp.StrPosition,
        getattr(exp, "Translate", None),
        exp.Hex,
        getattr(exp, "LowerHex", None),
        exp.ToBase64,
        getattr(exp, "Typeof", None),
        exp.First,
        exp.Last,
        exp.AnyValue,
        getattr(exp, "ArrayToString", None),
        getattr(exp, "ArraySize", None),
        getattr(exp, "Lag", None),
        getattr(exp, "Lead", None),
        getattr(exp, "FirstValue", None),
        getattr(exp, "LastValue", None),
        getattr(exp, "RowNumber", None),
        exp.Nullif,  # a comparison: recorded as one by the walk
        exp.Greatest,
        exp.Least,
        exp.Exists,
    )
    if c is not None
)

#: numeric and date functions: total where types are strict (PostgreSQL, DuckDB: a text argument is a type
#: error before any row is read); SQLite converts silently; MySQL converts with a warning that
#: ``@@warning_count`` counts — so over a *computed* value there they are a use, over a column's own value not
_NUMERIC: tuple[type[exp.Expression], ...] = tuple(
    c
    for c in (
        exp.Sum, exp.Avg, getattr(exp, "Round", None), getattr(exp, "Floor", None), getattr(exp, "Ceil", None),
        getattr(exp, "Stddev", None), getattr(exp, "StddevPop", None), getattr(exp, "StddevSamp", None),
        getattr(exp, "Variance", None), getattr(exp, "VariancePop", None), getattr(exp, "Extract", None),
        getattr(exp, "Year", None), getattr(exp, "Month", None), getattr(exp, "Day", None),
    )
    if c is not None
)  # fmt: skip
#: aggregates that return one argument's value from the row another argument picks (DuckDB's ``arg_max(x, key)``;
#: elsewhere a function of that name is the database's user's own, of unknown behaviour)
PICK_BY_KEY: tuple[type[exp.Expression], ...] = tuple(
    c for c in (getattr(exp, "ArgMax", None), getattr(exp, "ArgMin", None)) if c is not None
)
_DATE_PARTS = tuple(c for c in (getattr(exp, n, None) for n in ("Extract", "Year", "Month", "Day")) if c is not None)
_STRICT_TYPES = frozenset({"postgres", "duckdb"})


#: PostgreSQL's regular expression matches (``~``, ``~*``, ``regexp_like``, ``regexp_replace``, a jsonpath's
#: ``like_regex`` under ``@?``) whose cost a back-reference in their pattern makes depend on the subject
_PG_MATCHES: tuple[type[exp.Expression], ...] = (
    exp.RegexpLike, exp.RegexpILike, exp.RegexpReplace, exp.JSONBPathExists,
)  # fmt: skip
#: ``\1``..``\9`` (and ARE's ``\mnn``): a back-reference; an escaped backslash before a digit counts too (refused
#: the safe way)
_BACK_REFERENCE = re.compile(r"\\[1-9]")


def _back_reference(node: exp.Expression) -> str | None:
    """Why a PostgreSQL pattern match of a masked value takes a time that depends on what the value holds, or
    ``None``. The matcher settles a back-reference by trying every way to split the subject among the groups
    before it: ``full_name ~ '^A(.*)(.*)...(.*)\\9...\\1$'`` takes half a second over a name that begins with an
    A and a millisecond otherwise, and under ``SET statement_timeout`` one of the two fails (decision 0370). A
    pattern without one runs as an automaton, in a time the value's length bounds; a pattern the statement text
    does not spell out (a parameter, a concatenation, an ``E'...'`` string whose escapes could make one) may hold
    one."""
    pattern = node.args.get("expression")
    text = (
        str(pattern.this)
        if isinstance(pattern, exp.RawString) or (isinstance(pattern, exp.Literal) and pattern.is_string)
        else None
    )
    if isinstance(node, exp.JSONBPathExists):
        # a jsonpath spells characters as \uXXXX too: any backslash in a like_regex filter may be one
        if text is not None and not ("like_regex" in text.lower() and "\\" in text):
            return None
    elif text is not None and _BACK_REFERENCE.search(text) is None:
        return None
    return (
        f"{name_of(node)} with a pattern that is computed or holds a back-reference (PostgreSQL then takes a time "
        "that depends on what the value holds; a statement_timeout makes it an error)"
    )


def _long_separator(node: exp.Expression) -> bool:
    """A GROUP_CONCAT separator longer than a short literal (or computed): it can push the result to the cut."""
    sep = node.this.args.get("separator") if isinstance(node.this, exp.Expression) else None
    sep = sep if sep is not None else node.args.get("separator")
    if sep is None:
        return False
    size = _literal_length(sep)
    return size is None or size > _MAX_REPLACEMENT

#: arguments that steer a total function (a pattern, a separator, a part number, a format): a masked value
#: there can make it fail (``regexp_replace('a', ssn, 'b')``, ``split_part(x, ssn, 1)``)
_CONTROL: dict[type[exp.Expression], frozenset[str]] = {
    exp.SplitPart: frozenset({"delimiter", "part_index"}),
    # positions and lengths: a text there is converted to a number (MySQL warns, others may fail)
    exp.Substring: frozenset({"start", "length"}),
    exp.Left: frozenset({"expression"}),
    exp.Right: frozenset({"expression"}),
    exp.StrPosition: frozenset({"position"}),
    exp.Round: frozenset({"decimals"}),
    exp.SHA2: frozenset({"length"}),
    # ARRAY['a', 'b'][length(...)] is NULL exactly when the index runs out of the array
    exp.Bracket: frozenset({"expressions"}),  # MySQL: NULL for a bit count it does not support
    # lag(city, length(...)) is NULL exactly when the offset runs past the partition
    exp.Lag: frozenset({"offset", "default"}),
    exp.Lead: frozenset({"offset", "default"}),
    exp.RegexpReplace: frozenset({"expression", "replacement", "position", "occurrence", "modifiers"}),
    exp.Encode: frozenset({"charset"}),
    exp.Format: frozenset({"this"}),
    exp.Like: frozenset({"expression", "escape"}),
    exp.ILike: frozenset({"expression", "escape"}),
    exp.Escape: frozenset({"expression"}),
    exp.RegexpLike: frozenset({"expression", "flag"}),
    exp.RegexpILike: frozenset({"expression", "flag"}),
    exp.Glob: frozenset({"expression"}),
    exp.SimilarTo: frozenset({"expression"}),
    exp.Cast: frozenset(),  # decided by the target type (below)
}
for _name, _keys in (
    ("NthValue", {"offset"}),
    # PostgreSQL date_trunc(unit, ts, zone): an unknown zone is an error that quotes it
    ("TimestampTrunc", {"unit", "zone"}),
    ("DateTrunc", {"unit"}),
    # the field of extract() / PostgreSQL's date_part(field, ts): a column there is a unit the call may reject
    ("Extract", {"this"}),
    ("TimeToStr", {"format"}),
):
    if hasattr(exp, _name):
        _CONTROL[getattr(exp, _name)] = frozenset(_keys)

#: untyped functions (sqlglot ``Anonymous``) known to be total on any text
TOTAL_NAMES = frozenset(
    ["row_to_json", "to_json", "to_jsonb", "json_agg", "jsonb_agg", "json_build_object", "jsonb_build_object", "json_build_array", "jsonb_build_array", "json_object", "json_array", "json_group_array", "json_group_object", "json_quote", "quote", "hex", "md5", "sha1", "sha256", "to_base64", "reverse", "ifnull", "char_length", "octet_length", "bit_length", "btrim", "initcap", "lower", "upper", "list", "array_agg", "string_agg", "group_concat", "first", "last", "any_value", "min", "max", "typeof", "soundex", "json_arrayagg", "json_objectagg", "array_to_string", "array_length", "cardinality", "length", "len", "strlen", "concat", "concat_ws", "substr", "substring", "left", "right", "ascii", "total"]
)
#: untyped functions whose first argument steers them (a format string, an encoding name)
_FIRST_CONTROLS = frozenset({"printf", "format"})
_LATER_CONTROLS = frozenset({"encode"})
#: conversions that fail on characters the target encoding lacks: a column's own value only
_CONVERSIONS = frozenset({"convert_to", "convert_from"})
#: functions that yield one row per element: safe only over a collection whose size does not depend on the
#: values (``unnest(ARRAY(SELECT email ...))``, ``json_each(json_group_array(email))``, a whole row)
SET_RETURNING = frozenset(
    ["unnest", "json_each", "jsonb_each", "json_each_text", "jsonb_each_text", "json_array_elements", "jsonb_array_elements", "json_array_elements_text", "jsonb_array_elements_text", "json_tree", "explode"]
)
#: collections whose size is the number of rows or columns aggregated, never a function of the values
_SHAPED_NAMES = frozenset(
    ["json_group_array", "json_agg", "jsonb_agg", "array_agg", "list", "json_arrayagg", "to_json", "to_jsonb", "row_to_json", "json_build_array", "jsonb_build_array", "json_array"]
)
_TEXT_TYPES = frozenset(
    {
        exp.DataType.Type.TEXT,
        exp.DataType.Type.VARCHAR,
        exp.DataType.Type.CHAR,
        exp.DataType.Type.NCHAR,
        exp.DataType.Type.NVARCHAR,
        exp.DataType.Type.MEDIUMTEXT,
        exp.DataType.Type.LONGTEXT,
        exp.DataType.Type.TINYTEXT,
        exp.DataType.Type.NAME,
    }
)
_BINARY_TYPES = frozenset(
    {exp.DataType.Type.BINARY, exp.DataType.Type.VARBINARY, exp.DataType.Type.BLOB, exp.DataType.Type.LONGBLOB}
)
#: dialects where a cast to a binary type copies the bytes (PostgreSQL's bytea and DuckDB's BLOB parse
#: escapes in text and fail on a bad one)
_BINARY_COPIES = frozenset({"sqlite", "mysql"})


#: operators that compute (recorded by the walk as arithmetic) or combine; any other binary operator (JSON
#: extraction, array_position, a custom ``OPERATOR(...)``) may fail or compare, so it is a use
_PLAIN_BINARY: tuple[type[exp.Expression], ...] = tuple(
    c
    for c in (
        exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Mod, exp.IntDiv, exp.Pow, exp.DPipe, exp.Collate, exp.Dot,
        exp.Kwarg, exp.PropertyEQ, exp.And, exp.Or, getattr(exp, "Xor", None), exp.BitwiseAnd, exp.BitwiseOr,
        exp.BitwiseXor, exp.BitwiseLeftShift, exp.BitwiseRightShift,
    )
    if c is not None
)  # fmt: skip


#: functions whose result can be many times longer than their input: a length limit (MySQL's
#: ``max_allowed_packet`` turns the result NULL with a warning, SQLite's ``SQLITE_LIMIT_LENGTH`` and PostgreSQL's
#: 1 GB raise an error) is then reached exactly when the value held what a ``replace()`` looks for:
#: ``replace(replace(substr(ssn, 1, 1), '5', <5,000 a>), 'a', <5,000 b>)`` is 25 MB for a 5, one byte otherwise
_MULTIPLIERS: tuple[type[exp.Expression], ...] = tuple(
    c
    for c in (
        exp.Replace, exp.Hex, getattr(exp, "LowerHex", None), exp.ToBase64, exp.Pad, getattr(exp, "Repeat", None),
        getattr(exp, "Space", None),
    )
    if c is not None
)
_MULTIPLIER_NAMES = frozenset({"repeat", "lpad", "rpad", "space", "hex", "to_base64", "quote", "json_quote", "replace"})
#: functions whose result is at least as long as their inputs together (a multiplied value stays multiplied)
_GROWING: tuple[type[exp.Expression], ...] = (
    *_MULTIPLIERS, exp.Concat, exp.ConcatWs, exp.DPipe, exp.GroupConcat, exp.ArrayAgg, exp.JSONArrayAgg,
    exp.JSONObject,
)
#: untyped functions that concatenate their arguments (or collect them into one document): the result is as
#: long as all of them together
_CONCATENATING_NAMES = frozenset(
    {"concat", "concat_ws", "json_array", "json_object", "json_build_array", "jsonb_build_array", "json_build_object",
     "jsonb_build_object", "json_arrayagg", "json_objectagg", "json_group_array", "json_group_object", "group_concat",
     "string_agg", "array_to_string", "printf", "format"}
)  # fmt: skip
#: typed ones
_CONCATENATING: tuple[type[exp.Expression], ...] = tuple(
    c
    for c in (
        exp.Concat, exp.ConcatWs, exp.DPipe, exp.GroupConcat, exp.JSONObject, getattr(exp, "JSONArray", None),
        getattr(exp, "JSONObjectAgg", None), exp.JSONArrayAgg, getattr(exp, "ArrayToString", None), exp.Format,
    )
    if c is not None
)  # fmt: skip
#: a constant whose length the statement text does not bound: a variable (``@b`` set to 16 MB beforehand), a
#: bind parameter, a subquery's value
_UNSIZED: tuple[type[exp.Expression], ...] = tuple(
    c
    for c in (exp.Parameter, exp.Placeholder, getattr(exp, "SessionParameter", None), exp.Subquery, exp.Select)
    if c is not None
)
#: the longest replacement (in characters, summed over its literals) a ``replace()`` of a masked value may use;
#: a short one can grow a value only a few times, far from any length limit
_MAX_REPLACEMENT = 256
#: the most arguments a concatenation of a masked value may have (``concat(ssn, ssn, ...)`` a million times is a
#: length test against the limit)
_MAX_CONCAT_ARGS = 256


def _multiplies(node: exp.Expression) -> bool:
    """True when ``node`` is a function that can make its result many times longer than its input."""
    if isinstance(node, exp.Replace):
        # replace(ssn, '-', '') only shrinks; a replacement longer than its pattern (or not a literal) grows
        pattern = node.args.get("expression")
        grown = _literal_length(node.args.get("replacement"))
        cut = len(str(pattern.this)) if isinstance(pattern, exp.Literal) and pattern.is_string else 1
        return grown is None or grown > cut
    if isinstance(node, _MULTIPLIERS):
        return True
    return isinstance(node, exp.Anonymous) and name_of(node) in _MULTIPLIER_NAMES


def _literal_length(node: exp.Expression | None) -> int | None:
    """Upper bound of the length of a constant expression: the sum of its literals, ``None`` when unbounded
    (it holds a function that multiplies, or anything but literals, concatenations and parentheses)."""
    if node is None:
        return 0
    total = 0
    for sub in node.walk():
        if isinstance(sub, exp.Literal):
            total += len(str(sub.this))
        elif not isinstance(sub, (exp.Paren, exp.DPipe, exp.Concat, exp.Null, exp.Alias)):
            return None
    return total


def _concatenates(node: exp.Expression) -> bool:
    if isinstance(node, _CONCATENATING):
        return True
    return isinstance(node, exp.Anonymous) and name_of(node) in _CONCATENATING_NAMES


def unbounded(node: exp.Expression) -> bool:
    """True when ``node`` may be long: literals of more than ``_MAX_REPLACEMENT`` characters, a
    function that multiplies (``repeat('x', 16777206)``, ``space()``, ``lpad()``), or a value the text does not
    hold (a variable, a parameter, a subquery)."""
    total = 0
    for sub in node.walk():
        if isinstance(sub, _UNSIZED) or (isinstance(sub, exp.Expression) and _multiplies(sub)):
            return True
        if isinstance(sub, exp.Literal):
            total += len(str(sub.this))
    return total > _MAX_REPLACEMENT


def backtracks(pattern: str) -> bool:
    """Whether a regular expression may backtrack more than a scan of its subject: a group, an alternation, a
    back-reference, or more than one quantifier other than a fixed count (``^5(\\d|\\d|-)*[^\\d-]`` tries 2**n
    ways over n digits). Character classes and escapes are single characters; one quantifier on them stays
    linear per start."""
    i, quantifiers = 0, 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            if pattern[i + 1 : i + 2].isdigit():
                return True  # a back-reference
            i += 2
            continue
        if ch == "[":
            j = i + 1
            j += 1 if pattern[j : j + 1] == "^" else 0
            j += 1 if pattern[j : j + 1] == "]" else 0
            while j < len(pattern) and pattern[j] != "]":
                j += 2 if pattern[j] == "\\" else 1
            i = j + 1
            continue
        if ch in "()|":
            return True
        exact = re.match(r"\{\d+\}", pattern[i:])  # ``\d{3}``: a fixed count, nothing to try
        if exact is not None:
            i += exact.end()
            continue
        quantifiers += ch in "*+?{"
        i += 1
    return quantifiers > 1


def length_hazard(node: exp.Expression, kinds: list[tuple[str, int, str]]) -> str | None:
    """Why ``node`` can reach a length limit on a masked value (an error, or NULL with a warning), or ``None``.

    A function that grows its input is an oracle when what it is given has already been multiplied by a
    ``replace()`` (or ``hex``, ``lpad``...) of the masked value — growth compounds until the limit decides — or
    when it multiplies by a replacement that is long (or not a plain literal) itself."""
    if not isinstance(node, _GROWING) and not _concatenates(node) and not (
        isinstance(node, exp.Anonymous) and name_of(node) in _MULTIPLIER_NAMES
    ):
        return None
    tainted = [(key, i) for key, i, kind in kinds if kind != "const"]
    if not tainted:
        return None
    for key, i in tainted:
        value = node.args.get(key)
        item = value[i] if isinstance(value, list) and i < len(value) else value
        if isinstance(item, exp.Expression) and any(isinstance(sub, exp.Expression) and _multiplies(sub) for sub in item.walk()):
            return f"{name_of(node)}() of a value already grown from a masked one (a length limit would decide)"
    if isinstance(node, exp.Replace):
        grown = _literal_length(node.args.get("replacement"))
        if grown is None or grown > _MAX_REPLACEMENT:
            return f"{name_of(node)}() with a long or computed replacement (a length limit would decide)"
    if _concatenates(node):
        # concat(ssn, repeat('x', 16777206)) is NULL with a warning ("larger than max_allowed_packet") exactly
        # when the masked value is longer than 10 characters: a long text beside a masked value measures it
        # (``repeat(city, 1000000)`` too: its length is the caller's to choose)
        for key, i, _ in kinds:
            value = node.args.get(key)
            item = value[i] if isinstance(value, list) and i < len(value) else value
            if isinstance(item, exp.Expression) and unbounded(item):
                return (
                    f"{name_of(node)}() of a masked value and a long or computed text (a length limit would "
                    "decide, by how long the value is)"
                )
    if isinstance(node, (exp.Concat, exp.ConcatWs)) and len(node.expressions) > _MAX_CONCAT_ARGS:
        return f"{name_of(node)}() of more than {_MAX_CONCAT_ARGS} parts (a length limit would decide)"
    return None


#: what a value grown from a masked one is recorded as (a use :mod:`governed_db.masking.guard` refuses only on a
#: SQLite connection whose ``SQLITE_LIMIT_LENGTH`` the application lowered, decision 0421)
GROWN_USE = "a value longer than the masked value it is made of"
#: what a value a fixed number of bytes longer than a masked one is recorded as (``x || '.'``, ``printf('<%s>', x)``):
#: it tells only whether the value is within those bytes of the limit, so it is refused under a limit below
#: :data:`ADDED_LIMIT` only (decision 0421)
ADDED_USE = "a value some bytes longer than the masked value it is made of"
ADDED_LIMIT = 65_536
#: SQLite functions whose result is longer than their argument, however short the rest of the call
_SQLITE_GROWING_NAMES = frozenset({"hex", "quote", "json_quote"})


def grows(node: exp.Expression, kinds: list[tuple[str, int, str]]) -> str | None:
    """SQLite: the use to record when ``node`` gives a result longer than the masked value it is given (a
    :data:`GROWN_USE` when it multiplies the value's length, an :data:`ADDED_USE` when it adds bytes), or ``None``.

    Under a length limit the application lowered (``setlimit(SQLITE_LIMIT_LENGTH, 4000)`` before wrapping), a
    result longer than the limit fails with ``string or blob too big``: ``hex(notes)`` fails exactly when the notes
    hold more than 2,000 bytes, ``hex(substr(notes, k))`` measures them to the byte, ``notes || 'x'`` tells a value
    of the limit's length, and ``replace(bio, 'e', <256 characters>)`` counts its e's. The result is masked whole
    (the caller gains nothing from it) but whether it came back said how long the value is (decision 0421).
    Aggregates are left out: their masked arguments are stand-ins (decision 0161)."""
    if not any(kind != "const" for _key, _i, kind in kinds) or concatenates_rows(node):
        return None
    name = "||" if isinstance(node, exp.DPipe) else name_of(node)
    if isinstance(node, exp.Hex) or (isinstance(node, exp.Anonymous) and name in _SQLITE_GROWING_NAMES):
        return f"{GROWN_USE} ({name}())"
    if isinstance(node, exp.Replace):
        # the replacement comes from the caller: any longer than what it replaces grows the value per match
        found = _literal_length(node.args.get("expression"))
        put = _literal_length(node.args.get("replacement"))
        return f"{GROWN_USE} ({name}())" if found is None or put is None or put > found else None
    if isinstance(node, exp.DPipe) or _concatenates(node):
        if (isinstance(node, exp.Anonymous) and name == "printf") or isinstance(node, exp.Format):
            fmt = node.expressions[0] if isinstance(node, exp.Anonymous) and node.expressions else node.this
            if isinstance(fmt, exp.Literal) and fmt.is_string and str(fmt.this) == "%s" and len(kinds) == 2:
                return None  # printf('%s', x) is x
        others = [
            item
            for key, i, kind in kinds
            if kind == "const"
            for value in [node.args.get(key)]
            for item in [value[i] if isinstance(value, list) and i < len(value) else value]
        ]
        empty = all(isinstance(o, exp.Literal) and o.is_string and str(o.this) == "" for o in others)
        if empty and sum(1 for _key, _i, kind in kinds if kind != "const") == 1 and not isinstance(node, (exp.JSONObject, exp.Format)) and name != "json_array":
            return None  # x || '': as long as x
        # the masked values beside literals: as long as they are together, plus a fixed number of bytes
        return f"{ADDED_USE} ({name if isinstance(node, exp.DPipe) else f'{name}()'})"
    return None


#: a printf conversion whose width or precision is an argument (``%.*c``), or a fmt replacement field with a
#: nested one (``{:>{}}``): the value decides how long the result is, and past a length limit SQLite's
#: printf() returns NULL (``printf('%.*c', substr(iban, 8, 1) || '000000', 'x')`` is NULL exactly for a digit
#: other than 0 under a 1 MB limit)
_SIZED_BY_ARGUMENT = re.compile(r"%[^%a-zA-Z]*\*|\{[^{}]*\{")


def _fixed_format(node: exp.Expression) -> bool:
    """True when the format of a printf()/format() call is a literal sized by itself alone."""
    fmt = node.expressions[0] if node.expressions else None
    return isinstance(fmt, exp.Literal) and fmt.is_string and not _SIZED_BY_ARGUMENT.search(str(fmt.this))


def name_of(node: exp.Expression) -> str:
    if isinstance(node, exp.Anonymous):
        return str(node.name).lower()
    if isinstance(node, exp.Func):
        return node.sql_name().replace("J_S_O_N_B", "JSONB").replace("J_S_O_N", "JSON").lower()
    return node.key


def _takes_width(fmt: exp.Expression | None) -> bool:
    """A ``format()``/``printf()`` format (a literal, or not) that may read a width or precision from an
    argument (``%*s``, ``%1$*2$s``; DuckDB's ``{:{}}``)."""
    if not (isinstance(fmt, exp.Literal) and fmt.is_string):
        return True
    text = str(fmt.this)
    return "*" in text or re.search(r"\{[^}]*\{", text) is not None


def _text_cast(node: exp.Expression | None) -> bool:
    """A cast to a text type (whose result is text whatever the value's storage class)."""
    while isinstance(node, exp.Paren):
        node = node.this
    to = node.args.get("to") if isinstance(node, exp.Cast) else None
    return isinstance(to, exp.DataType) and to.this in _TEXT_TYPES


def _utf8(node: exp.Expression | None) -> bool:
    return isinstance(node, exp.Literal) and node.is_string and str(node.this).upper().replace("-", "") == "UTF8"


#: to_json(x) and its kin are as shaped as ``x``: a whole row's keys are its column names, but an object built
#: from computed keys (jsonb_build_object(substr(ssn, 1, 1), 1, '5', 2)) has one key fewer when they are equal
_AS_SHAPED_AS_ARGUMENT = frozenset({"to_json", "to_jsonb", "row_to_json"})


def cast_fits(node: exp.Expression, declared: list[str | None]) -> bool:
    """A MySQL ``CAST(x AS CHAR(n))`` of a column declared ``[VAR]CHAR(m)`` with ``m <= n`` (or
    ``BINARY(n)`` of ``[VAR]BINARY(m)``): it never truncates, so it never warns."""
    to = node.args.get("to") if isinstance(node, exp.Cast) else None
    if not isinstance(to, exp.DataType) or len(to.expressions) != 1 or not declared:
        return False
    size = to.expressions[0]
    size = size.this if isinstance(size, exp.DataTypeParam) else size
    if not (isinstance(size, exp.Literal) and not size.is_string):
        return False
    binary = to.this in _BINARY_TYPES
    want = r"(?:var)?binary" if binary else r"(?:national\s+)?(?:var)?char(?:acter)?(?:\s+varying)?"
    for d in declared:
        found = re.fullmatch(rf"\s*{want}\s*\(\s*(\d+)\s*\).*", (d or "").lower())
        if found is None or int(found.group(1)) > int(str(size.this)):
            return False
    return True


#: declared type categories (classify.type_category) MySQL turns into a number without a warning
_NUMBER_LIKE = frozenset({"int", "float", "bool", "date"})
#: functions that convert their argument to a number or a date on MySQL (with a warning when it is text)
CONVERTING: tuple[type[exp.Expression], ...] = (*_NUMERIC, exp.TsOrDsToDate)


def declared_numbers(categories: list[str]) -> bool:
    """Whether the columns read (their declared type categories) are all numbers, booleans or dates: MySQL
    converts them to a number without a warning (an unknown type counts as text: fail closed)."""
    return bool(categories) and all(c in _NUMBER_LIKE for c in categories)


def converts_text(node: exp.Expression, dialect: str, categories: list[str]) -> str | None:
    """Why a numeric or date function over columns' own values is an oracle on MySQL/MariaDB, or ``None``.

    ``SUM(card)`` of a text column converts it with a warning ("Truncated incorrect DOUBLE value") unless the
    whole value reads as a number, so ``@@warning_count`` says whether a card number holds spaces (one bit per
    row); ``YEAR(ssn)`` warns unless it reads as a date. Over a column declared as a number or a date (a masked
    ``salary``) nothing converts: ``categories`` are the declared type categories of the columns read (an
    unknown type counts as text: fail closed). PostgreSQL and DuckDB refuse ``sum(text)`` before reading a
    row, and SQLite converts silently."""
    if dialect != "mysql" or not isinstance(node, CONVERTING):
        return None
    if declared_numbers(categories):
        return None
    return f"{name_of(node)}() of a text column (MySQL warns unless the whole value reads as a number or a date)"


def shaped(node: exp.Expression | None) -> bool:
    """True when ``node`` is a collection whose size does not depend on the values in it."""
    while isinstance(node, (exp.Paren, exp.Subquery, exp.Alias)):
        node = node.this
    if isinstance(node, exp.Select) and len(node.expressions) == 1:
        return shaped(node.expressions[0])
    if isinstance(node, exp.Tuple):
        return all(shaped(e) for e in node.expressions)
    if isinstance(node, (exp.ArrayAgg, exp.JSONArrayAgg)):
        return True
    if isinstance(node, exp.Array):
        return True  # ARRAY[a, b] or ARRAY(subquery): one element per item or row
    if isinstance(node, exp.Anonymous):
        if name_of(node) in _AS_SHAPED_AS_ARGUMENT:
            return bool(node.expressions) and shaped(node.expressions[0])
        return name_of(node) in _SHAPED_NAMES
    return False


#: DuckDB types whose sum() and avg() cannot overflow over any real number of rows: integers of up to 64 bits add
#: up in a HUGEINT, decimals of up to 18 digits in a DECIMAL(38), floats turn infinite without an error
_DUCKDB_NARROW_SUMMANDS = re.compile(
    r"\s*(?:u?(?:tinyint|smallint|integer|int|bigint)|int[1248]|signed|long|short|boolean|bool|float[48]?|real|"
    r"double(?:\s+precision)?|(?:decimal|numeric)(?:\s*\(\s*(?:1[0-8]|[1-9])\s*(?:,\s*\d+\s*)?\))?)\s*",
    re.IGNORECASE,
)


#: functions whose value is a (64-bit at most) integer count or position, whatever they are given: a sum of them
#: cannot overflow DuckDB's HUGEINT (their own hazards, if any, are judged where they are)
SMALL_INTEGERS: tuple[type[exp.Expression], ...] = (exp.Length, exp.Count, exp.Unicode, exp.Ascii, exp.StrPosition)
SMALL_INTEGER_NAMES = frozenset({"ascii", "ord", "strlen", "octet_length", "bit_length", "instr", "strpos"})


def duckdb_sum_overflows(node: exp.Expression, kinds: list[str], declared: list[str | None]) -> str | None:
    """Why DuckDB's ``sum()``/``avg()`` of a masked value can fail on what the value is, or ``None``.

    Over a HUGEINT or a DECIMAL wider than 18 digits DuckDB adds exactly and fails with ``Overflow in HUGEINT
    addition: <sum> + <value>`` past 2**127 (10**38): ``sum(x)`` over ``salary UNION ALL SELECT 2**127 - 1 -
    guess`` fails exactly when the salary is above the guess (and the message quotes it). A sum is safe when
    every value it adds is a stored column's own value (``kinds``: no constant, nothing computed, whose type a
    set operation or an expression could have widened) declared as an integer of up to 64 bits, a float or a
    decimal of up to 18 digits (``declared``; an unknown type fails closed)."""
    if not isinstance(node, (exp.Sum, exp.Avg)):
        return None
    if kinds and all(k == "column" for k in kinds) and declared and all(
        d is not None and _DUCKDB_NARROW_SUMMANDS.fullmatch(d) for d in declared
    ):
        return None
    return (
        f"{name_of(node)}() of a value that may be a HUGEINT or a wide DECIMAL (DuckDB fails with 'Overflow' when "
        "the values add past its range; sum a stored integer column itself, or use fsum())"
    )


def hazard(node: exp.Expression, kinds: list[tuple[str, int, str]], dialect: str) -> str | None:
    """Why ``node`` is an oracle when a masked value reaches it, or ``None`` when it is not.

    ``kinds`` lists ``(argument key, position, origin kind)`` for each argument (``const`` carries nothing from
    a column; ``column`` is a column's value as it is).
    """
    tainted = [(key, i, kind != "const") for key, i, kind in kinds]
    if not any(t for _, _, t in tainted):
        return None
    grown = length_hazard(node, kinds)
    if grown is not None:
        return grown
    if isinstance(node, exp.GroupConcat) and any(t for key, _, t in tainted if key == "separator"):
        # group_concat(x, ssn) / string_agg(x, ssn): the separator is repeated once per row, so over enough
        # rows whether the result passes the length limit ("string or blob too big") says how long it is
        return f"the separator of {name_of(node)}() (repeated per row, its length reaches the length limit)"
    if dialect == "sqlite" and isinstance(node, exp.Sum):
        # SQLite's sum() adds integers exactly and fails with "integer overflow" past 2**63: over a masked value
        # UNION ALL a guess (9223372036854775807 - guess) whether it fails says whether the value is larger
        return "sum() (SQLite fails with 'integer overflow' when the values add past 2**63; total() cannot fail)"
    if (
        dialect == "sqlite"
        and isinstance(node, exp.JSONKeyValue)
        and any(t for key, _, t in tainted if key == "this")
        and not _text_cast(node.this)
    ):
        # SQLite's json_object() fails with "labels must be TEXT" on a key stored as a number or a blob: over a
        # masked column of numeric affinity it says whether the value is all digits
        return "a json_object() key (SQLite fails unless it is TEXT; use CAST(... AS TEXT))"
    if isinstance(node, exp.Cast):
        # a cast fails (or, as TRY_CAST, turns NULL) exactly for the values it cannot convert
        to = node.args.get("to")
        kind = to.this if isinstance(to, exp.DataType) else None
        if isinstance(to, exp.DataType) and to.expressions and dialect == "mysql":
            # MySQL truncates a value to CHAR(n) with a warning (@@warning_count counts it), exactly when the
            # value is longer: over a computed value (replace(ssn, '4', 'xxxx')) a guess, over a column's own
            # value its length (a column declared no longer than n is let through by the walk: cast_fits)
            if any(k not in ("const", "column") for _, _, k in kinds):
                return f"a cast to {to.sql(dialect=dialect)} of a computed value"
            return f"a cast to {to.sql(dialect=dialect)} (MySQL warns when the value is longer: its length)"
        if kind in _TEXT_TYPES or (kind in _BINARY_TYPES and dialect in _BINARY_COPIES):
            return None
        return f"a cast to {to.sql(dialect=dialect) if isinstance(to, exp.Expression) else 'another type'}"
    if (
        dialect == "mysql"
        and isinstance(node, exp.GroupConcat)
        and (
            any(k not in ("const", "column") for key, _, k in kinds if key == "this")
            or _long_separator(node)
        )
    ):
        # GROUP_CONCAT cuts at group_concat_max_len with a warning: over a computed value (replace(ssn, '4',
        # <a long text>)) whether it warns says what the value holds; with a separator of ~100,000 characters
        # over a dozen copies of a row, it says how long the value is
        return "GROUP_CONCAT of a masked value with a long separator or computed (cut with a warning)"
    if isinstance(node, exp.Substring) and dialect == "postgres":
        start = node.args.get("start")
        if start is not None and not (isinstance(start, exp.Literal) and not start.is_string):
            # PostgreSQL substring(x FROM 'pattern') / substring(x, text) is a regular expression match, NULL
            # when it fails: only a number literal makes it a plain cut
            return "substring() with a pattern (NULL or not says whether it matches)"
    if isinstance(node, exp.Format) and _takes_width(node.this) and any(t for key, _, t in tainted if key != "this"):
        # format('%*s', x, ...) converts the argument the width is read from to an integer: an error unless
        # it is one (replace(substr(ssn, 1, 1), '5', 'x') fails exactly for a 5)
        return "format() with a width or precision taken from an argument"
    if dialect == "mysql" and isinstance(node, exp.RegexpReplace) and any(t for key, _, t in tainted if key == "this"):
        # MariaDB's PCRE stops at its match limit with a warning ("Regex error 'match limit exceeded'"):
        # REGEXP_REPLACE(CONCAT(ssn, '1111...'), '^5(\\d|\\d|-)*[^\\d-]', '') warns exactly when the SSN begins
        # with a 5, since only then does the pattern try its 2**n ways
        pattern = node.args.get("expression")
        if not (isinstance(pattern, exp.Literal) and pattern.is_string) or backtracks(str(pattern.this)):
            return (
                f"{name_of(node)}() with a pattern that can backtrack (MariaDB stops at its match limit with a "
                "warning, by what the value holds)"
            )
    if dialect == "postgres" and isinstance(node, _PG_MATCHES) and any(t for key, _, t in tainted if key == "this"):
        why = _back_reference(node)
        if why is not None:
            return why
    controls = next((keys for cls, keys in _CONTROL.items() if isinstance(node, cls)), None)
    if controls is not None:
        if any(t and key in controls for key, _, t in tainted):
            return f"the pattern or format of {name_of(node)}()"
        if not isinstance(node, _NUMERIC):
            return None
    if isinstance(node, (exp.Unnest, exp.Explode)) or (
        isinstance(node, exp.Anonymous) and name_of(node) in SET_RETURNING
    ):
        keys = ["expressions"] * len(node.expressions) if node.expressions else ["this"]
        items = node.expressions if node.expressions else [node.this]
        kind_of = {(key, i): kind for key, i, kind in kinds}
        if all(
            shaped(e) or kind_of.get((key, i if key == "expressions" else 0)) in ("row", "const")
            for i, (key, e) in enumerate(zip(keys, items, strict=True))
            if isinstance(e, exp.Expression)
        ):
            return None
        return f"{name_of(node)}(), whose number of rows depends on the value"
    if isinstance(node, exp.Anonymous):
        name = name_of(node)
        if name in TOTAL_NAMES:
            return None
        if name in _FIRST_CONTROLS:
            if any(t for key, i, t in tainted if i == 0):
                return f"the format of {name}()"
            if not _fixed_format(node) or _takes_width(node.expressions[0] if node.expressions else None):
                # format('%*s', x, ...) reads a width from an argument: an integer conversion that fails on
                # anything else (replace(substr(ssn, 1, 1), '5', 'x') errors exactly for a 5)
                return f"{name}() with a width or precision taken from an argument"
            return None
        if name in _LATER_CONTROLS:
            return None if not any(t for key, i, t in tainted if i > 0) else f"the encoding of {name}()"
        if name in _CONVERSIONS:
            # convert_to(replace(ssn, '4', '€'), 'LATIN1') fails exactly when the value held a 4; a column's
            # own value fails when it holds a character the encoding lacks (Cyrillic in LATIN1: which script a
            # name is written in), so only a conversion to UTF-8 (the database's own) is total
            plain = all(k in ("const", "column") for key, i, k in kinds)
            if not plain:
                return f"{name}() of a computed value (it fails on characters it cannot convert)"
            if name == "convert_to" and _utf8(node.expressions[1] if len(node.expressions) > 1 else None):
                return None
            return f"{name}() to an encoding other than UTF8 (it fails on characters it cannot convert)"
        return f"{name}(), which may fail or decide rows on the value"
    if isinstance(node, _NUMERIC):
        if dialect in _STRICT_TYPES or all(k in ("const", "column") for _, _, k in kinds):
            return None
        if dialect == "sqlite" and not isinstance(node, _DATE_PARTS):
            return None  # SQLite turns text into a number silently, with no warning to count
        return f"{name_of(node)}() of a computed value (a conversion that warns or fails says what it held)"
    if isinstance(node, (*_CARRIERS, *_TOTAL)):
        return None
    if isinstance(node, (exp.Predicate, *_PLAIN_BINARY, exp.Unary, exp.Connector)):
        return None  # comparisons and arithmetic are recorded by the walk under their own names
    return f"{name_of(node)}, which may fail or decide rows on the value"


#: functions that return a whole row as a document whose keys are still the column names
_ROW_KEEPERS = frozenset({"row_to_json", "to_json", "to_jsonb", "json_agg", "jsonb_agg", "array_agg", "list"})


def keeps_row(node: exp.Expression) -> bool:
    """A whole row stays a row (its fields masked by name) only through functions that keep its keys."""
    if isinstance(node, (exp.ArrayAgg, exp.JSONArrayAgg, exp.Array, exp.Tuple, exp.Window, exp.Filter)):
        return True
    if isinstance(node, exp.Cast):
        to = node.args.get("to")
        return isinstance(to, exp.DataType) and to.this in (
            exp.DataType.Type.JSON,
            exp.DataType.Type.JSONB,
            exp.DataType.Type.TEXT,
            exp.DataType.Type.VARCHAR,
        )
    return isinstance(node, exp.Anonymous) and str(node.name).lower() in _ROW_KEEPERS


def set_comparison(node: exp.Expression) -> str | None:
    """The set operation's name when it compares rows (INTERSECT, EXCEPT, UNION without ALL)."""
    if isinstance(node, exp.Intersect):
        return "INTERSECT"
    if isinstance(node, exp.Except):
        return "EXCEPT"
    if node.args.get("distinct") is not False:
        return "UNION (which removes duplicates)"
    return None


def known_function_name(name: str, dialect: str) -> bool:
    """True when analysis reads a call of ``name`` as a function it knows (sqlglot's own expression, or a name on
    the lists of total, pure, set-returning or catalog functions), rather than an unknown one."""
    from governed_db.masking.names import PURE_FUNCTIONS, SCHEMA_PRAGMA_FUNCTIONS, STORAGE_FUNCTIONS

    low = name.lower()
    if low in TOTAL_NAMES or low in PURE_FUNCTIONS or low in SET_RETURNING or low in STORAGE_FUNCTIONS:
        return True
    if low in SCHEMA_PRAGMA_FUNCTIONS or low in _FIRST_CONTROLS or low in _CONVERSIONS:
        return True
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_$]*", name):
        return True  # a name SQL text can only quote: fail closed
    try:
        from sqlglot import parse_one

        tree = parse_one(f"SELECT {name}(x)", read=dialect)
    except Exception:
        return True
    call = tree.expressions[0] if tree.expressions else None
    return not isinstance(call, exp.Anonymous)


#: aggregates that put every row's value into one (their result is as long as the rows the caller chose)
_ROW_CONCATENATING: tuple[type[exp.Expression], ...] = tuple(
    c
    for c in (
        exp.GroupConcat, exp.ArrayAgg, exp.JSONArrayAgg, getattr(exp, "JSONObjectAgg", None),
        getattr(exp, "JSONBObjectAgg", None),
    )
    if c is not None
)  # fmt: skip
_ROW_CONCATENATING_NAMES = frozenset(
    {"jsonb_agg", "json_agg", "xmlagg", "string_agg", "array_agg", "group_concat", "json_group_array", "list",
     "json_arrayagg", "json_objectagg", "json_object_agg", "jsonb_object_agg", "json_group_object"}
)  # fmt: skip
#: untyped functions that build one value out of a row or several values (a document, a row, an array)
_BUILDING_NAMES = frozenset(
    {"row", "to_json", "to_jsonb", "row_to_json", "array_to_json", "hstore", "jsonb_object", "json_object",
     "array_append", "array_prepend", "array_cat", "array_fill"}
)  # fmt: skip
#: a format whose width or precision is a number of 4 digits or more (``format('%268435400s', '')``): the text
#: is as long as the number says, whatever it formats
_WIDE_FORMAT = re.compile(r"%[-+ #0-9$]*?\d{4,}|%[-+ #0-9$]*\.\d{4,}")


def lengthens(node: exp.Expression) -> bool:
    """Whether ``node`` makes a value whose length the caller chooses, however short what it is given: a
    function that multiplies (``repeat('x', n)``, ``lpad``), a long literal, a bind parameter, a ``format()``
    with a wide field, ``ARRAY(SELECT ...)`` and an aggregate that concatenates rows (over as many rows as the
    caller makes). Such a value merged with a masked one measures the masked one's length against the
    database's limits (PostgreSQL's 1 GB text and 256 MB jsonb, decision 0285)."""
    if isinstance(node, exp.Literal):
        return node.is_string and len(str(node.this)) > _MAX_REPLACEMENT
    if isinstance(node, (exp.Placeholder, exp.Parameter)):
        return True
    if _multiplies(node) or (isinstance(node, exp.Anonymous) and name_of(node) == "array_fill"):
        return True
    if isinstance(node, exp.Format) or (isinstance(node, exp.Anonymous) and name_of(node) in ("format", "printf")):
        fmt = node.this if isinstance(node, exp.Format) else (node.expressions[0] if node.expressions else None)
        return not (isinstance(fmt, exp.Literal) and fmt.is_string) or _WIDE_FORMAT.search(str(fmt.this)) is not None
    return concatenates_rows(node)


def concatenates_rows(node: exp.Expression) -> bool:
    """An aggregate that puts every row's value into one (``string_agg``, ``array_agg``, ``json_agg``...), or
    ``ARRAY(SELECT ...)``."""
    if isinstance(node, exp.Array) and any(isinstance(e, (exp.Select, exp.Union, exp.Subquery)) for e in node.expressions):
        return True
    return isinstance(node, _ROW_CONCATENATING) or (
        isinstance(node, exp.Anonymous) and name_of(node) in _ROW_CONCATENATING_NAMES
    )


def merges(node: exp.Expression) -> bool:
    """Whether ``node`` builds one value out of several (a concatenation, a document, an array, a row) or out of
    every row (an aggregate that concatenates them): its length is theirs together."""
    if isinstance(node, (exp.Array, exp.Tuple, exp.Struct, *_ROW_CONCATENATING)) or _concatenates(node):
        return True
    return isinstance(node, exp.Anonymous) and name_of(node) in (_BUILDING_NAMES | _ROW_CONCATENATING_NAMES)


def merge_hazards(
    node: exp.Expression,
    parts: list[tuple[bool, bool, bool]],
    tables: list[frozenset[str]] | None = None,
    stored: list[frozenset[str]] | None = None,
    huge: list[bool] | None = None,
) -> list[tuple[int, str]]:
    """Which of ``parts`` merging them in ``node`` measures, and why: each part is ``(holds a column's value, its
    length is the caller's to choose, its length is not bounded by the statement)``.

    A part holding a column's value is measured when it also holds a long text already (a derived table's row
    with a ``repeat()`` column; a UNION ALL column of a masked value and a long text), or when another part's
    length is not bounded by the statement — a long text, a multiplier, a wide ``format()``, a bind parameter:
    the merged value passes PostgreSQL's 1 GB (256 MB for jsonb) limit, or another engine's, exactly when the
    part is long enough (decision 0285). A column's stored text of unbounded length (``stored``: per part, the
    tables it holds one of) counts as long beside a part holding a value of *another* table (``tables``: per
    part, the tables whose values it holds): the caller may have stored 256 MB there beforehand (decision 0350).
    A clear column of the masked value's own table is not counted, so ``full_name || ' (' || city || ')'`` runs;
    but on MySQL/MariaDB one whose type holds a text near the packet size (``huge``: per part) is, whatever its
    table (decision 0359)."""
    if not merges(node):
        return []
    found: list[tuple[int, str]] = []
    for i, (tainted, long, _unbounded_part) in enumerate(parts):
        if not tainted:
            continue
        if long:
            found.append((i, f"{name_of(node)}() of a value that holds a masked value and a long text (a length "
                             "limit would decide, by how long the value is)"))
        elif (
            not any(u for j, (_t, _l, u) in enumerate(parts) if j != i)
            and tables is not None
            and stored is not None
            and any(stored[j] - tables[i] for j in range(len(parts)) if j != i)
        ):
            found.append((i, f"{name_of(node)}() of a masked value beside a text stored in another table, whose "
                             "length nothing bounds (a long text stored there beforehand would make a length limit "
                             "decide, by how long the value is); select them as separate columns"))
        elif huge is not None and not any(u for j, (_t, _l, u) in enumerate(parts) if j != i) and any(
            huge[j] for j in range(len(parts)) if j != i
        ):
            found.append((i, f"{name_of(node)}() of a masked value beside a text stored in a column that holds more "
                             "than 64 KB (MEDIUMTEXT, LONGTEXT, JSON), which may have been filled to the server's "
                             "packet size beforehand (past it the value is NULL with a warning, by how long the "
                             "masked value is); select them as separate columns"))
        elif any(u for j, (_t, _l, u) in enumerate(parts) if j != i):
            found.append((i, f"{name_of(node)}() of a masked value beside a text whose length the statement does "
                             "not bound (a length limit would decide, by how long the value is); select them as "
                             "separate columns"))
    return found
