"""Decoders a caller registers through a governed connection: driver code that would see every value first.

psycopg's loaders (``conn.adapters.register_loader``), asyncpg's codecs (``conn.set_type_codec``) and PyMySQL's /
aiomysql's ``conn.decoders`` turn each cell the server sends into a Python value *before* governed_db masks the
row, and governed_db's own reads of a table's values (the samples that classify it) go through them too: a
loader that keeps what it is given, or whose error quotes it, hands the caller clear values. As for sqlite3's
``text_factory`` (decision 0170), what the caller registers through the governed connection may only be the
driver's own decoders, or ``str``/``bytes``/``bytearray`` (they keep nothing and never fail); the
application registers its own on the connection before :func:`governed_db.wrap` — SQLAlchemy's connect-time
setup (its JSON and INET codecs) counts as that (decision 0238).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, MutableMapping
from typing import Any

import wrapt

from governed_db.errors import GuardrailViolation

#: decoders built into Python that keep nothing and never fail on what a driver hands them
NEVER_FAIL = (str, bytes, bytearray)
#: modules whose loaders psycopg registers itself (composite, enum, hstore, range, JSON loaders it builds)
PSYCOPG_OWN = ("psycopg.", "psycopg_c.", "psycopg_binary.")


def check_decoder(gov: Any, what: str, decoder: Any, own: tuple[str, ...] = ()) -> None:
    """Refuse ``decoder`` unless it is the driver's own (its code is in the modules ``own`` names), a
    never-failing builtin, or registered while SQLAlchemy sets the connection up."""
    if gov.setting_up or any(decoder is d for d in NEVER_FAIL) or (own and _defined_in(decoder, own)):
        return
    name = getattr(decoder, "__qualname__", None) or type(decoder).__name__
    raise gov.refusal(
        GuardrailViolation(
            f"refused by governed_db: {what} would call {name} with every value the database returns before "
            "masking (governed_db's own samples of each table's values too), and what it keeps or quotes in an "
            "error would be clear. Next step: register it on the connection before governed_db.wrap() "
            "(application setup), or convert the fetched (masked) values instead."
        )
    )


def _defined_in(decoder: Any, own: tuple[str, ...]) -> bool:
    """Whether the code that decodes is the driver's: a function of its modules, or a loader class whose
    ``load`` is (and, for psycopg's JSON loaders, whose ``loads`` function is ``json.loads``)."""
    code = getattr(decoder, "load", decoder) if isinstance(decoder, type) else decoder
    module = getattr(code, "__module__", None) or getattr(getattr(code, "__objclass__", None), "__module__", "")
    if not str(module or "").startswith(own):
        return False
    loads = getattr(decoder, "_loads", None)  # psycopg.types.json.set_json_loads(f): a loader calling f
    return loads is None or loads is json.loads


#: connection attributes naming the class a driver builds cursors from
CURSOR_CLASS_ATTRIBUTES = frozenset({"cursor_factory", "server_cursor_factory", "cursorclass"})
#: keyword arguments of ``connection.cursor()`` naming one (sqlite3 ``factory``, psycopg2 ``cursor_factory``,
#: PyMySQL ``cursor``); a row factory is not one: it is handed masked rows
CURSOR_CLASS_ARGUMENTS = frozenset({"factory", "cursor_factory", "cursor", "cursorclass"})


def check_cursor_class(gov: Any, raw: Any, what: str, cls: Any) -> None:
    """Refuse a cursor class of the caller's own (a subclass overriding ``fetchall``, ``_do_get_result``...):
    the driver's fetch code in it sees every row before masking. The driver's own classes (the very objects its
    package defines: ``DictCursor``, ``RealDictCursor``, ``ClientCursor``, ``SSCursor``...) are allowed."""
    if gov.setting_up or not isinstance(cls, type):
        return
    root = type(raw).__module__.split(".")[0]
    if _inert_above_driver(cls, root):
        return
    raise gov.refusal(
        GuardrailViolation(
            f"refused by governed_db: {what} = {cls.__qualname__} would run code of its own on every row the "
            "database returns before masking (governed_db's own samples of each table's values too). Next step: "
            f"use one of {root}'s own cursor classes (or a row factory, which is handed masked rows), or set it on "
            "the connection before governed_db.wrap() (application setup)."
        )
    )


#: what a class body defines without adding behaviour (``class MyCursor(sqlite3.Cursor): pass``)
_INERT = frozenset({
    "__module__", "__qualname__", "__doc__", "__dict__", "__weakref__", "__annotations__", "__firstlineno__",
    "__static_attributes__", "__orig_bases__", "__parameters__",
})  # fmt: skip
#: libraries whose cursor subclasses are trusted (SQLAlchemy's aiomysql adapter silences aiomysql's warnings)
_TRUSTED_LIBRARIES = ("sqlalchemy.",)


def _inert_above_driver(cls: type, root: str) -> bool:
    """Whether ``cls`` is one of the driver's own classes, or only adds nothing (or a trusted library's code)
    on top of one: every class before the driver's in its MRO has an empty body."""
    for klass in cls.__mro__:
        module = str(getattr(klass, "__module__", "") or "")
        if (module == root or module.startswith(root + ".")) and _defines(module, klass):
            return True
        if module.startswith(_TRUSTED_LIBRARIES):
            continue
        if klass is object or set(vars(klass)) - _INERT:
            return False
    return False


def _defines(module: str, cls: type) -> bool:
    """Whether ``module`` itself defines ``cls`` under its name (not a class that only says it comes from there)."""
    import sys

    owner: Any = sys.modules.get(module)
    for part in cls.__qualname__.split("."):
        owner = getattr(owner, part, None)
    return owner is cls


class GuardedAdapters(wrapt.ObjectProxy[Any]):
    """psycopg's ``AdaptersMap`` of a governed connection or cursor: loaders are checked, the rest is psycopg's."""

    def __init__(self, raw: Any, gov: Any) -> None:
        super().__init__(raw)
        self._self_gov = gov

    def register_loader(self, cls: Any, loader: Any) -> None:
        what = f"register_loader({cls!r}, ...)"
        check_decoder(self._self_gov, what, loader, PSYCOPG_OWN)
        if not self._self_gov.setting_up and not _fits_psycopg_type(self.__wrapped__, cls, loader):
            raise self._self_gov.refusal(GuardrailViolation(WRONG_TYPE.format(what=what, name=loader.__name__)))
        self.__wrapped__.register_loader(cls, loader)


#: a driver's own decoder registered for a type it was not written for fails on some values and not others (and
#: quotes them: ``invalid literal for int() with base 10: '536-22-8726'``)
WRONG_TYPE = (
    "refused by governed_db: {what} would decode the type with {name}, which is not its decoder: it fails on "
    "some values and not others (quoting them), which tells what a masked column holds. Next step: register a "
    "type's own decoder only (text as text is fine), or do it on the connection before governed_db.wrap()."
)
#: the first oid PostgreSQL gives a type the database defines (enums, composites, extension types)
_FIRST_USER_OID = 16384


def _fits_psycopg_type(adapters: Any, cls: Any, loader: Any) -> bool:
    """Whether psycopg's own ``loader`` is one psycopg uses for the type ``cls`` names: the type's default
    loader (or a class built on it, like ``set_json_loads``'s), text read as text (the server sends valid text in
    text format), or any psycopg loader for a type the database defines (``register_enum``, ``register_composite``,
    ``register_hstore`` build theirs)."""
    import psycopg
    from psycopg.pq import Format

    try:
        oid = cls if isinstance(cls, int) else adapters.types[cls].oid
        fmt = Format(getattr(loader, "format", Format.TEXT))
    except Exception:
        return False
    if oid >= _FIRST_USER_OID:
        return True
    if fmt == Format.TEXT and loader.__name__ == "TextLoader":
        return True
    default = psycopg.adapters.get_loader(oid, fmt)
    return default is not None and (issubclass(loader, default) or loader.__name__ == default.__name__)


class CheckedDecoders(MutableMapping[Any, Any]):
    """PyMySQL's ``conn.decoders`` seen through a governed connection: a decoder set in it is checked first
    (the driver reads its own dict, which this one changes)."""

    def __init__(self, raw: dict[Any, Any], gov: Any) -> None:
        self._raw, self._gov = raw, gov

    def __getitem__(self, key: Any) -> Any:
        return self._raw[key]

    def __setitem__(self, key: Any, decoder: Any) -> None:
        if self._raw.get(key) is not decoder:
            check_decoder(self._gov, f"connection.decoders[{key!r}]", decoder, ("pymysql.",))
        self._raw[key] = decoder

    def __delitem__(self, key: Any) -> None:
        del self._raw[key]  # the driver then hands out the server's bytes as they are: nothing is called

    def __iter__(self) -> Iterator[Any]:
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)


class GuardedDecoders:
    """Mixin for PyMySQL / aiomysql connection proxies: ``decoders`` is checked when set, item by item or whole."""

    __wrapped__: Any
    _self_gov: Any

    @property
    def decoders(self) -> Any:
        return CheckedDecoders(self.__wrapped__.decoders, self._self_gov)

    @decoders.setter
    def decoders(self, value: Any) -> None:
        checked = CheckedDecoders(dict(self.__wrapped__.decoders), self._self_gov)
        for key, decoder in dict(value).items():
            checked[key] = decoder
        self.__wrapped__.decoders = dict(value)


__all__ = [
    "CURSOR_CLASS_ARGUMENTS",
    "CURSOR_CLASS_ATTRIBUTES",
    "NEVER_FAIL",
    "CheckedDecoders",
    "GuardedAdapters",
    "GuardedDecoders",
    "check_cursor_class",
    "check_decoder",
]
