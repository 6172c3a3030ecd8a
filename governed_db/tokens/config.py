"""How a governed connection knows which tokens to trust: ``wrap(..., token=...)`` and env vars.

The ``token`` option of :func:`governed_db.wrap` is one of

* a :class:`~governed_db.tokens.TokenVerifier` (shared by as many connections as you like);
* a dict of :class:`~governed_db.tokens.TokenVerifier` keyword arguments, e.g.
  ``{"issuer": ..., "audience": ..., "jwks_url": ..., "claims_map": {...}}``;
* ``None``: the environment variables below.

A dict is completed by the environment for the keys it does not set:

==================================  ================================================================
``GOVERNED_DB_TOKEN_ISSUER``        the issuer (``iss``); its JWKS is discovered from its metadata
``GOVERNED_DB_TOKEN_AUDIENCE``      the audience (``aud``); several separated by commas
``GOVERNED_DB_TOKEN_JWKS_URL``      fetch the JWKS from this https URL instead of discovering it
``GOVERNED_DB_TOKEN_JWKS``          a local JWKS: a file path, or the JSON itself (air-gapped sites)
``GOVERNED_DB_TOKEN_CLAIMS_MAP``    a claims map as JSON (the :class:`ClaimsMap` field names)
``GOVERNED_DB_TOKEN_LEEWAY``        clock-skew allowance in seconds (default 30)
==================================  ================================================================

The verifier for a connection is built at its first token (so the variables are
read then, once) and reused for every later statement.
"""

from __future__ import annotations

import json
import os
import threading
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from governed_db.errors import ConfigurationError
from governed_db.identity import Identity, identity_from_env, os_identity
from governed_db.tokens.errors import TokenError
from governed_db.tokens.verifier import TokenVerifier, VerifiedToken

ENV_PREFIX = "GOVERNED_DB_TOKEN_"
#: env var → TokenVerifier keyword
ENV_VARS: dict[str, str] = {
    "GOVERNED_DB_TOKEN_ISSUER": "issuer",
    "GOVERNED_DB_TOKEN_AUDIENCE": "audience",
    "GOVERNED_DB_TOKEN_JWKS_URL": "jwks_url",
    "GOVERNED_DB_TOKEN_JWKS": "jwks",
    "GOVERNED_DB_TOKEN_CLAIMS_MAP": "claims_map",
    "GOVERNED_DB_TOKEN_LEEWAY": "leeway",
}
_VERIFIER_KEYS = frozenset(TokenVerifier.__init__.__kwdefaults__ or ()) | {"issuer", "audience"}


def config_from_env(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The TokenVerifier keyword arguments the ``GOVERNED_DB_TOKEN_*`` variables set."""
    env = os.environ if environ is None else environ
    config: dict[str, Any] = {}
    for var, key in ENV_VARS.items():
        raw = env.get(var, "").strip()
        if not raw:
            continue
        if key == "audience":
            config[key] = [a.strip() for a in raw.split(",") if a.strip()]
        elif key == "claims_map":
            try:
                config[key] = json.loads(raw)
            except json.JSONDecodeError as e:
                raise ConfigurationError(f"{var} is not valid JSON: {e}") from None
        elif key == "leeway":
            try:
                config[key] = float(raw)
            except ValueError:
                raise ConfigurationError(f"{var} must be a number of seconds, got {raw!r}") from None
        else:
            config[key] = raw
    return config


def check_option(option: Any, environ: Mapping[str, str] | None = None) -> None:
    """Check the ``token`` option at wrap time: its shape, its keys, and — when issuer and audience are
    known — every value (by building the verifier, which fetches nothing). ConfigurationError otherwise."""
    if option is None or isinstance(option, TokenVerifier):
        return
    if not isinstance(option, Mapping):
        raise ConfigurationError(
            f"the token option must be a TokenVerifier, a dict of its arguments or None, got {type(option).__name__}"
        )
    unknown = sorted(str(k) for k in set(option) - _VERIFIER_KEYS)
    if unknown:
        raise ConfigurationError(
            f"token option has unknown key(s) {', '.join(unknown)}; valid: {', '.join(sorted(_VERIFIER_KEYS))}"
        )
    try:
        try:
            build_verifier(option, environ)
        except TokenError as e:
            if e.cause != "not_configured":
                raise ConfigurationError(str(e)) from None
            # incomplete is fine until a token arrives (the environment may complete it), but every value that
            # is given is checked now: the missing issuer/audience stand in as placeholders
            stand_in = {"issuer": "https://issuer.invalid", "audience": "audience.invalid"}
            for k in ("issuer", "audience"):
                if k in option and option[k] is not None and not option[k]:
                    raise ConfigurationError(f"the token option's {k} is empty") from None
            build_verifier({**{k: v for k, v in stand_in.items() if not option.get(k)}, **option}, environ)
    except TokenError as e:
        raise ConfigurationError(str(e)) from None
    except TypeError as e:
        raise ConfigurationError(f"the token option has a value of the wrong type ({e})") from None


def build_verifier(option: Any, environ: Mapping[str, str] | None = None) -> TokenVerifier:
    """The TokenVerifier the ``token`` option (plus env vars) describes; ConfigurationError if incomplete."""
    if isinstance(option, TokenVerifier):
        return option
    if option is not None and not isinstance(option, Mapping):
        raise ConfigurationError(
            f"the token option must be a TokenVerifier, a dict of its arguments or None, got {type(option).__name__}"
        )
    config = config_from_env(environ)
    if option:
        unknown = sorted(set(option) - _VERIFIER_KEYS)
        if unknown:
            raise ConfigurationError(
                f"token option has unknown key(s) {', '.join(unknown)}; valid: {', '.join(sorted(_VERIFIER_KEYS))}"
            )
        if "jwks" in option or "jwks_url" in option:  # the option's key source replaces the env's
            config.pop("jwks", None)
            config.pop("jwks_url", None)
        config.update(option)
    missing = [k for k in ("issuer", "audience") if not config.get(k)]
    if missing:
        raise TokenError(
            f"a token was supplied but there is no {' or '.join(missing)} to verify it against: pass "
            "wrap(..., token={'issuer': ..., 'audience': ...}) or set GOVERNED_DB_TOKEN_ISSUER and "
            "GOVERNED_DB_TOKEN_AUDIENCE (see docs/identity.md)",
            cause="not_configured",
        )
    return TokenVerifier(**config)


# Verifier per governed connection. Settings objects are unhashable (they hold a dict),
# so they are tracked by id() with a weak reference guarding against id reuse.
_by_settings: dict[int, tuple[weakref.ref[Any], TokenVerifier]] = {}
_by_settings_lock = threading.Lock()


def _forget(key: int) -> Any:
    def callback(_ref: weakref.ref[Any]) -> None:
        _by_settings.pop(key, None)

    return callback


def verifier_for(settings: Any) -> TokenVerifier:
    entry = _by_settings.get(id(settings))
    if entry is not None and entry[0]() is settings:
        return entry[1]
    with _by_settings_lock:
        entry = _by_settings.get(id(settings))
        if entry is not None and entry[0]() is settings:
            return entry[1]
        verifier = build_verifier(settings.option("token"))
        key = id(settings)
        try:
            ref = weakref.ref(settings, _forget(key))
        except TypeError:  # not weak-referenceable: do not cache (never serve another object's verifier)
            return verifier
        _by_settings[key] = (ref, verifier)
        return verifier


def verify_configured(token: str | bytes, settings: Any) -> Identity:
    """The pipeline's entry: verify a token an identity source produced, as ``settings`` configure.

    Every failure — configuration missing, JWKS unreachable, token bad — is a
    :class:`TokenError`; the pipeline refuses the statement. It never falls
    back to a self-declared identity.
    """
    try:
        return verifier_for(settings).verify(token)
    except TokenError:
        raise
    except ConfigurationError as e:
        raise TokenError(f"token verification is misconfigured: {e}", cause="not_configured") from None
    except Exception as e:  # fail closed on anything unexpected, without leaking the token
        raise TokenError(f"token verification failed unexpectedly ({type(e).__name__})", cause="invalid") from e


_by_config: dict[str, TokenVerifier] = {}
_by_config_lock = threading.Lock()
_MAX_BY_CONFIG = 32


def _config_key(config: Mapping[str, Any]) -> str:
    # objects with no JSON form (a ClaimsMap, a custom class) are keyed by identity
    return json.dumps(config, sort_keys=True, default=lambda o: f"<{type(o).__qualname__}@{id(o)}>")


def identity_from_token(
    token: str | bytes, *, issuer: str, audience: str | Sequence[str], **options: Any
) -> Identity:
    """A verified :class:`Identity` from an OIDC/JWT ``token``.

    Keyword arguments are those of :class:`TokenVerifier`: ``issuer``,
    ``audience``, ``jwks`` or ``jwks_url`` (or neither: discovery), ``claims_map``,
    ``leeway``, ... Calls with the same arguments share one verifier, so calling
    this per web request neither refetches the JWKS nor re-verifies a token
    already seen. Raises :class:`TokenError` naming the cause.
    """
    config = dict(options, issuer=issuer, audience=audience)
    key = _config_key(config)
    verifier = _by_config.get(key)
    if verifier is None:
        verifier = TokenVerifier(**config)
        with _by_config_lock:
            if len(_by_config) >= _MAX_BY_CONFIG:
                _by_config.pop(next(iter(_by_config)), None)
            _by_config[key] = verifier
    return verifier.verify(token)


@dataclass(frozen=True, slots=True)
class Resolution:
    """Which identity statements would run under, and where it came from (``governed-db whoami``)."""

    identity: Identity
    source: str
    expires_at: Any = None


def resolve(token: str | None = None, *, token_option: Any = None, environ: Mapping[str, str] | None = None) -> Resolution:
    """Resolve an identity the way a governed connection without ``identity=`` would.

    ``token`` (when given) is verified with ``token_option``/env; otherwise
    ``GOVERNED_DB_IDENTITY``, then ``GOVERNED_DB_TOKEN``, then the OS user.
    """
    env = os.environ if environ is None else environ
    source = "token"
    if token is None:
        from_env = identity_from_env(env)
        if from_env is not None:
            return Resolution(from_env, "GOVERNED_DB_IDENTITY")
        token = env.get("GOVERNED_DB_TOKEN") or None
        source = "GOVERNED_DB_TOKEN"
        if token is None:
            return Resolution(os_identity(), "operating-system user")
    verified: VerifiedToken = build_verifier(token_option, env).inspect(token.strip())
    return Resolution(verified.identity, source, verified.expires_at)


def clear_caches() -> None:
    """Forget cached verifiers, verified tokens and fetched JWKS (tests; after rotating trust at run time)."""
    from governed_db.tokens.keys import clear_shared

    with _by_config_lock:
        _by_config.clear()
    clear_shared()


__all__ = [
    "ENV_VARS",
    "Resolution",
    "build_verifier",
    "check_option",
    "clear_caches",
    "config_from_env",
    "identity_from_token",
    "resolve",
    "verifier_for",
    "verify_configured",
]
