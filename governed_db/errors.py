"""Exceptions raised by governed_db.

One root, :class:`GovernedDBError`. A refusal (:class:`GuardrailViolation`,
:class:`ApprovalRequired`) carries its :class:`~governed_db.policy.decision.Decision`
and, when raised from a governed connection, is *also* an instance of the
wrapped driver's ``ProgrammingError`` so that ``except driver.DatabaseError``,
SQLAlchemy's ``DBAPIError`` wrapping and agent frameworks keep working.
Exceptions stay picklable, including the per-driver subclasses.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from governed_db.policy.decision import Decision


#: every governed_db exception class by ``module.qualname`` (filled by ``__init_subclass__``), as psycopg's
#: ``errors.py`` registers its classes: pickling and the error contract tests look classes up here
REGISTRY: dict[str, type[GovernedDBError]] = {}


class GovernedDBError(Exception):
    """Root of every exception governed_db raises itself.

    Every subclass, wherever it is defined, registers itself in :data:`REGISTRY` and pickles back to its own
    class (and, when raised from a governed connection, to the same driver-flavoured class).
    """

    #: set on the classes :func:`driver_flavoured` makes; they are not registered (they pickle by recipe)
    _flavoured_with: type[BaseException] | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("_flavoured_with") is None:
            REGISTRY[f"{cls.__module__}.{cls.__qualname__}"] = cls

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (_own_class(type(self)), _driver_base(type(self)), self.args, self.__dict__))


class ConfigurationError(GovernedDBError, ValueError):
    """Bad configuration or bad input to governed_db's API (says what and how to fix)."""


class GovernanceFault(GovernedDBError):
    """Governance itself failed (a bug, a broken policy, a store that is down).

    In production the statement is refused (fail closed); in development the
    fault is logged as a warning and the statement proceeds.
    """


class InvalidStatement(GovernedDBError, TypeError):
    """The statement is not SQL text governed_db can read (``None``, a number, bad bytes...)."""


class GuardrailViolation(GovernedDBError):
    """A statement was refused before it reached the database."""

    def __init__(self, message: str, decision: Decision | None = None, *, statement: str | None = None):
        super().__init__(message)
        self.decision = decision
        #: The normalized statement (literals replaced by placeholders), never parameters.
        self.statement = statement

    @property
    def rules(self) -> tuple[str, ...]:
        return self.decision.rules if self.decision else ()

    @property
    def remedy(self) -> str | None:
        return self.decision.remedy if self.decision else None



class DependencyUnavailable(GuardrailViolation, GovernanceFault):
    """Refused because something governance depends on did not answer (in time): the identity provider's keys.

    Both a refusal carrying its decision (``identity-unverified``) and a :class:`GovernanceFault`: the
    statement was not judged bad, governance could not judge it, and fails closed.
    """


class ApprovalRequired(GuardrailViolation):
    """The statement needs an approval first; ``request_id`` names the request."""

    def __init__(
        self,
        message: str,
        decision: Decision | None = None,
        *,
        statement: str | None = None,
        request_id: str | None = None,
        fingerprint: str | None = None,
        approve_command: str | None = None,
    ):
        super().__init__(message, decision, statement=statement)
        self.request_id = request_id
        self.fingerprint = fingerprint
        self.approve_command = approve_command


# --- driver-flavoured subclasses ---------------------------------------------------------------

_DRIVER_CLASSES: dict[tuple[type, type], type] = {}


def driver_flavoured(cls: type[GovernedDBError], driver_error: type[BaseException] | None) -> type:
    """``cls`` mixed with the driver's error class, created once and cached.

    The result is a subclass of both, so ``except GuardrailViolation`` and
    ``except sqlite3.ProgrammingError`` both catch it.
    """
    if driver_error is None or issubclass(cls, driver_error):
        return cls
    key = (cls, driver_error)
    made = _DRIVER_CLASSES.get(key)
    if made is None:
        made = type(
            cls.__name__,
            (cls, driver_error),
            {"__module__": cls.__module__, "__qualname__": cls.__qualname__, "_flavoured_with": driver_error},
        )
        _DRIVER_CLASSES[key] = made
    return made


def flavour(exc: GovernedDBError, driver_error: type[BaseException] | None) -> GovernedDBError:
    """A copy of ``exc`` whose class is also ``driver_error`` (same message and attributes)."""
    cls = driver_flavoured(type(exc), driver_error)
    if cls is type(exc):
        return exc
    new: Any = _new(cls, driver_error)
    Exception.__init__(new, *exc.args)
    new.__dict__.update(exc.__dict__)
    return new  # type: ignore[no-any-return]


def _new(cls: type, driver_error: Any) -> Any:
    # The driver's __new__, not Exception's or TypeError's: C-based driver errors (psycopg2) refuse
    # any other base's __new__ ("TypeError.__new__(InvalidStatement) is not safe").
    base: Any = driver_error if isinstance(driver_error, type) else cls
    return base.__new__(cls)


def retyped(exc: GovernedDBError, cls: type[GovernedDBError]) -> GovernedDBError:
    """A copy of ``exc`` as ``cls`` (a subclass of its class): same message and attributes."""
    new: Any = Exception.__new__(cls)
    Exception.__init__(new, *exc.args)
    new.__dict__.update(exc.__dict__)
    return new  # type: ignore[no-any-return]


def _own_class(cls: type) -> type:
    """The registered governed_db class of ``cls`` (itself, or the class a driver-flavoured one was made from)."""
    for base in cls.__mro__:
        if base.__dict__.get("_flavoured_with") is None and issubclass(base, GovernedDBError):
            return base
    return GovernedDBError  # pragma: no cover - every raised class derives from GovernedDBError


def _driver_base(cls: type) -> tuple[str, str] | None:
    driver_error: Any = cls.__dict__.get("_flavoured_with")
    if driver_error is None:
        return None
    return (driver_error.__module__, driver_error.__qualname__)


def _rebuild(public: type, driver: tuple[str, str] | None, args: tuple[Any, ...], state: dict[str, Any]) -> Exception:
    cls: type = public
    obj: Any = None
    if driver is not None:
        try:
            obj = importlib.import_module(driver[0])
            for part in driver[1].split("."):
                obj = getattr(obj, part)
            cls = driver_flavoured(public, obj)
        except (ImportError, AttributeError):
            cls, obj = public, None  # unpickled where the driver is absent: keep the governed_db class
    exc: Any = _new(cls, obj if cls is not public else None)
    Exception.__init__(exc, *args)
    exc.__dict__.update(state)
    return exc  # type: ignore[no-any-return]

REGISTRY[f"{__name__}.GovernedDBError"] = GovernedDBError
