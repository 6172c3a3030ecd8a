"""Refusals are governed_db errors *and* the driver's errors, and survive pickling."""

from __future__ import annotations

import pickle
import sqlite3

import pytest

from governed_db import ApprovalRequired, Decision, GovernedDBError, GuardrailViolation, RuleHit
from governed_db.errors import GovernanceFault, driver_flavoured, flavour
from governed_db.policy.decision import Action


def _decision() -> Decision:
    return Decision.combine([RuleHit("no-drop", Action.DENY, "drops data", "use a migration")], environment="production")


def test_flavoured_refusal_is_both_classes() -> None:
    """A flavoured refusal is caught by `except GuardrailViolation` and by `except sqlite3.DatabaseError`."""
    exc = flavour(GuardrailViolation("refused", _decision()), sqlite3.ProgrammingError)
    assert isinstance(exc, GuardrailViolation)
    assert isinstance(exc, sqlite3.ProgrammingError) and isinstance(exc, sqlite3.DatabaseError)
    assert exc.rules == ("no-drop",) and exc.remedy == "use a migration"


def test_flavoured_class_is_cached() -> None:
    """One subclass per (governed class, driver class), so `type(a) is type(b)` for equal refusals."""
    assert driver_flavoured(GuardrailViolation, sqlite3.ProgrammingError) is driver_flavoured(
        GuardrailViolation, sqlite3.ProgrammingError
    )
    assert driver_flavoured(GuardrailViolation, None) is GuardrailViolation


@pytest.mark.parametrize(
    "exc",
    [
        GuardrailViolation("refused", _decision(), statement="DROP TABLE t"),
        ApprovalRequired("needs approval", _decision(), request_id="req-1", fingerprint="fp", approve_command="x"),
        GovernanceFault("broken"),
    ],
)
def test_refusals_pickle_with_their_driver_flavour(exc: GovernedDBError) -> None:
    """Pickling keeps the message, the decision, the request id and the driver flavour."""
    flavoured = flavour(exc, sqlite3.ProgrammingError)
    again = pickle.loads(pickle.dumps(flavoured))
    assert type(again) is type(flavoured)
    assert str(again) == str(exc)
    assert again.__dict__ == flavoured.__dict__
    assert isinstance(again, sqlite3.ProgrammingError)


def test_approval_required_is_a_guardrail_violation() -> None:
    """ApprovalRequired is caught by handlers written for GuardrailViolation."""
    exc = ApprovalRequired("x", request_id="r1")
    assert isinstance(exc, GuardrailViolation) and exc.request_id == "r1"


def _every_error_class() -> list[type[GovernedDBError]]:
    import governed_db.approvals
    import governed_db.approvals.review
    import governed_db.audit.store
    import governed_db.policy.file
    import governed_db.tokens  # noqa: F401
    from governed_db.errors import REGISTRY

    return sorted(REGISTRY.values(), key=lambda c: f"{c.__module__}.{c.__qualname__}")


def _instance(cls: type[GovernedDBError]) -> GovernedDBError:
    exc = cls.__new__(cls)
    Exception.__init__(exc, f"a {cls.__name__}")
    exc.__dict__["marker"] = 7
    return exc


@pytest.mark.parametrize("cls", _every_error_class(), ids=lambda c: c.__qualname__)
def test_every_error_class_pickles_back_to_itself(cls: type[GovernedDBError]) -> None:
    """Every registered governed_db exception (wherever defined) unpickles as its own class with its state."""
    back = pickle.loads(pickle.dumps(_instance(cls)))
    assert type(back) is cls and str(back) == f"a {cls.__name__}" and back.marker == 7


@pytest.mark.parametrize("cls", _every_error_class(), ids=lambda c: c.__qualname__)
def test_every_error_class_pickles_back_with_its_driver_flavour(cls: type[GovernedDBError]) -> None:
    """Driver-flavoured, every class unpickles as the same flavoured class (both except clauses still catch it)."""
    flavoured = flavour(_instance(cls), sqlite3.DatabaseError)
    back = pickle.loads(pickle.dumps(flavoured))
    assert type(back) is type(flavoured) and isinstance(back, cls) and isinstance(back, sqlite3.DatabaseError)
    assert back.marker == 7


def test_registry_holds_classes_defined_outside_errors_module() -> None:
    """Subclasses in other modules (tokens, approvals, audit, policy files) register themselves."""
    names = {c.__qualname__ for c in _every_error_class()}
    assert {"TokenError", "StoreUnavailable", "ReviewRefused", "AuditStoreError", "PolicyFileError"} <= names
