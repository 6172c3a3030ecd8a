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
