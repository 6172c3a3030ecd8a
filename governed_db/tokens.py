"""Identity from identity-provider tokens (OIDC/JWT). Filled in by the identity work."""

from __future__ import annotations

from typing import Any

from governed_db.errors import GovernedDBError
from governed_db.identity import Identity


class TokenError(GovernedDBError):
    """A token could not be verified; the message names the cause."""


def verify_configured(token: str | bytes, settings: Any) -> Identity:
    raise TokenError("token verification is not configured in this build")
