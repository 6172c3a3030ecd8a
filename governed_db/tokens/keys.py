"""Where the issuer's public keys come from.

* :class:`RemoteJWKS` — the issuer's JWKS over HTTPS, found through its OpenID
  metadata (``{issuer}/.well-known/openid-configuration`` → ``jwks_uri``) or
  given as a URL. Fetched on first use, cached for ``ttl`` seconds, refreshed
  once when a token names an unknown ``kid`` (key rotation) — but at most once
  per ``refresh_cooldown`` seconds, so a stream of tokens with made-up key ids
  cannot turn into a stream of requests to the identity provider. Never
  fetched per statement. Shared by every verifier that uses the same URL.
* :class:`StaticJWKS` — a JWKS given as a dict, JSON text or file, for
  air-gapped sites; never fetched.

Plain ``http`` is refused, except for loopback addresses when
``allow_insecure_http_for_loopback=True`` (tests, a local development IdP).
"""

from __future__ import annotations

import http.client
import json
import logging
import math
import os
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any, Protocol

import jwt

from governed_db.deadline import Deadline, deadline_handlers
from governed_db.errors import ConfigurationError
from governed_db.tokens.errors import TokenError

log = logging.getLogger("governed_db.tokens")

DEFAULT_TTL = 3600.0
DEFAULT_REFRESH_COOLDOWN = 30.0
DEFAULT_TIMEOUT = 5.0
#: JWKS and metadata documents are small; refuse anything bigger than this.
MAX_DOCUMENT_BYTES = 1 << 20
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


class KeySource(Protocol):
    """Finds the public key that verifies a token with key id ``kid`` and algorithm ``alg``."""

    description: str

    def key_for(self, kid: str | None, alg: str) -> jwt.PyJWK: ...


def check_url(url: str, *, allow_insecure_http_for_loopback: bool = False, what: str = "URL") -> str:
    """``url`` if it is https (or loopback http with the explicit opt-in); TokenError otherwise."""
    parts = urllib.parse.urlsplit(url) if isinstance(url, str) else None
    if parts is not None and parts.hostname:
        if parts.scheme == "https":
            return url
        if parts.scheme == "http" and allow_insecure_http_for_loopback and parts.hostname in LOOPBACK_HOSTS:
            return url
    raise TokenError(
        f"the {what} {url!r} is not an https URL; keys must come over HTTPS "
        "(plain http is accepted only for 127.0.0.1/::1/localhost with allow_insecure_http_for_loopback=True)",
        cause="insecure_url",
    )


class _Keys:
    """One parsed JWKS document: raw JWKs by key id, PyJWK objects built on demand per (kid, alg)."""

    def __init__(self, document: Any, origin: str) -> None:
        if not isinstance(document, Mapping) or not isinstance(document.get("keys"), list):
            raise TokenError(f"{origin} is not a JWKS (a JSON object with a 'keys' list)", cause="jwks_unreachable")
        self.origin = origin
        self.by_kid: dict[str | None, list[Mapping[str, Any]]] = {}
        for jwk in document["keys"]:
            # encryption keys have no business verifying signatures
            if isinstance(jwk, Mapping) and jwk.get("use", "sig") == "sig" and "kty" in jwk:
                self.by_kid.setdefault(jwk.get("kid"), []).append(jwk)
        self._prepared: dict[tuple[str | None, str], jwt.PyJWK] = {}

    def find(self, kid: str | None, alg: str) -> jwt.PyJWK | None:
        """The key for (kid, alg); None when no key has that kid; TokenError when it cannot do ``alg``."""
        prepared = self._prepared.get((kid, alg))
        if prepared is not None:
            return prepared
        if kid is None:
            candidates = [k for keys in self.by_kid.values() for k in keys]
            if len(candidates) != 1:
                raise TokenError(
                    f"the token names no key id (kid) and {self.origin} has {len(candidates)} signing keys; "
                    "the issuer must put a kid in the token header",
                    cause="unknown_kid",
                )
        else:
            candidates = self.by_kid.get(kid, [])
            if not candidates:
                return None
        for jwk in candidates:
            if jwk.get("alg") not in (None, alg):
                continue
            try:
                # bind the key to the algorithm the token claims: PyJWT then refuses a
                # key whose type cannot do it (an RSA key named by an ES256 token, say)
                prepared = jwt.PyJWK(dict(jwk), algorithm=alg)
            except (jwt.PyJWTError, ValueError, TypeError, KeyError):
                continue
            self._prepared[(kid, alg)] = prepared
            return prepared
        raise TokenError(
            f"the key {kid!r} in {self.origin} cannot verify a {alg} signature "
            f"(key type {candidates[0].get('kty')!r}, alg {candidates[0].get('alg')!r})",
            cause="key_mismatch",
        )


def load_jwks_document(value: Any) -> dict[str, Any]:
    """A JWKS from a dict (a JWKS or one JWK), JSON text, or a path to a JSON file."""
    if isinstance(value, Mapping):
        doc = dict(value)
        return {"keys": [doc]} if "kty" in doc and "keys" not in doc else doc
    if isinstance(value, (str, os.PathLike)):
        text = str(value)
        if text.lstrip().startswith("{"):
            source = "the inline JWKS JSON"
        else:
            source = f"the JWKS file {text!r}"
            from governed_db.config_files import read_config_text

            try:
                text = read_config_text(text, "the JWKS file")
            except ConfigurationError as e:
                raise ConfigurationError(f"could not read {source}: {e}") from None
        try:
            loaded = json.loads(text)
        except (json.JSONDecodeError, RecursionError) as e:
            raise ConfigurationError(f"{source} is not valid JSON: {e}") from None
        if not isinstance(loaded, dict):
            raise ConfigurationError(f"{source} must hold a JSON object (a JWKS with 'keys')")
        return load_jwks_document(loaded)
    raise ConfigurationError(
        f"jwks must be a JWKS dict, JSON text or a path to a JWKS file, got {type(value).__name__}"
    )


class StaticJWKS:
    """Keys given up front (air-gapped sites): never fetched, never refreshed."""

    def __init__(self, jwks: Any) -> None:
        self.description = "the local JWKS"
        try:
            self._keys = _Keys(load_jwks_document(jwks), self.description)
        except TokenError as e:
            raise ConfigurationError(str(e)) from None

    def key_for(self, kid: str | None, alg: str) -> jwt.PyJWK:
        key = self._keys.find(kid, alg)
        if key is None:
            raise TokenError(
                f"no key with kid {kid!r} in {self.description}; the issuer may have rotated its keys — "
                "install its current JWKS",
                cause="unknown_kid",
            )
        return key


class _SafeRedirect(urllib.request.HTTPRedirectHandler):
    """Follow redirects only to URLs the same https rule accepts."""

    def __init__(self, allow_insecure_http_for_loopback: bool) -> None:
        self.allow = allow_insecure_http_for_loopback

    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> Any:
        check_url(newurl, allow_insecure_http_for_loopback=self.allow, what="redirect target")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def fetch_json(
    url: str,
    *,
    timeout: float | None = None,
    deadline: Deadline | None = None,
    allow_insecure_http_for_loopback: bool = False,
) -> Any:
    """GET a small JSON document within one total deadline; every failure is a TokenError naming the URL.

    The deadline covers the whole fetch (connect, TLS, headers, body, redirects) — a server trickling one
    byte a second cannot stretch it. The fetch runs in a helper thread the caller waits for; when time is
    up the helper's sockets are shut down (so it ends too) and the caller is refused at once.
    """
    check_url(url, allow_insecure_http_for_loopback=allow_insecure_http_for_loopback)
    if deadline is None:
        with Deadline(DEFAULT_TIMEOUT if timeout is None else timeout).running() as own:
            return fetch_json(url, deadline=own, allow_insecure_http_for_loopback=allow_insecure_http_for_loopback)
    outcome: list[Any] = []
    done = threading.Event()

    def work() -> None:
        try:
            outcome.append((True, _fetch(url, deadline, allow_insecure_http_for_loopback)))
        except BaseException as e:  # handed to the caller, who raises it
            outcome.append((False, e))
        finally:
            done.set()

    helper = threading.Thread(target=work, name="governed_db-jwks-fetch", daemon=True)
    helper.start()
    if not done.wait(deadline.remaining()):
        deadline.expire()
        raise _timed_out(url, deadline)
    ok, value = outcome[0]
    if not ok:
        if deadline.expired:
            raise _timed_out(url, deadline) from None
        raise value
    return value


def _timed_out(url: str, deadline: Deadline) -> TokenError:
    return TokenError(
        f"fetching {url} did not finish within {deadline.seconds:g} s (the total deadline for the identity "
        "provider's keys); the statement is refused. Check the identity provider, raise timeout=, or configure "
        "a local JWKS (jwks=...)",
        cause="jwks_unreachable",
    )


def _fetch(url: str, deadline: Deadline, allow_insecure_http_for_loopback: bool) -> Any:
    from governed_db import __version__

    handlers: list[Any] = [_SafeRedirect(allow_insecure_http_for_loopback), *deadline_handlers(deadline)]
    if urllib.parse.urlsplit(url).hostname in LOOPBACK_HOSTS:
        handlers.append(urllib.request.ProxyHandler({}))  # a proxy cannot reach our loopback
    opener = urllib.request.build_opener(*handlers)
    request = urllib.request.Request(
        url, headers={"Accept": "application/json", "User-Agent": f"governed-db/{__version__}"}
    )
    try:
        # the per-read timeout is what is left of the deadline; the watchdog bounds the total
        with opener.open(request, timeout=max(deadline.remaining(), 0.001)) as response:
            body = response.read(MAX_DOCUMENT_BYTES + 1)
    except urllib.error.HTTPError as e:
        raise TokenError(f"{url} answered HTTP {e.code}; check the issuer/JWKS URL", cause="jwks_unreachable") from None
    except TokenError:
        raise
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as e:
        reason = getattr(e, "reason", None) or e
        raise TokenError(
            f"could not fetch {url} ({reason}); check network access to the identity provider, "
            "or configure a local JWKS (jwks=...) for air-gapped sites",
            cause="jwks_unreachable",
        ) from None
    if deadline.expired:  # a cut socket can look like a short, complete body
        raise _timed_out(url, deadline)
    if len(body) > MAX_DOCUMENT_BYTES:
        raise TokenError(f"{url} returned more than {MAX_DOCUMENT_BYTES} bytes", cause="jwks_unreachable")
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        raise TokenError(f"{url} did not return JSON", cause="jwks_unreachable") from None


class RemoteJWKS:
    """The issuer's JWKS over HTTPS: cached for ``ttl``, refreshed once on an unknown kid."""

    def __init__(
        self,
        *,
        jwks_url: str | None = None,
        issuer: str | None = None,
        ttl: float = DEFAULT_TTL,
        refresh_cooldown: float = DEFAULT_REFRESH_COOLDOWN,
        timeout: float = DEFAULT_TIMEOUT,
        allow_insecure_http_for_loopback: bool = False,
    ) -> None:
        if (jwks_url is None) == (issuer is None):
            raise ConfigurationError("RemoteJWKS needs exactly one of jwks_url= or issuer= (for discovery)")
        self.allow_http = allow_insecure_http_for_loopback
        try:
            if jwks_url is not None:
                check_url(jwks_url, allow_insecure_http_for_loopback=self.allow_http, what="JWKS URL")
            else:
                check_url(str(issuer), allow_insecure_http_for_loopback=self.allow_http, what="issuer URL")
        except TokenError as e:
            raise ConfigurationError(str(e)) from None
        self.issuer = issuer
        self.jwks_url = jwks_url
        self.ttl = float(ttl)
        self.refresh_cooldown = float(refresh_cooldown)
        self.timeout = float(timeout)
        self.description = f"the JWKS of {issuer}" if jwks_url is None else f"the JWKS at {jwks_url}"
        #: how many JWKS documents were fetched (diagnostics; a healthy process fetches rarely)
        self.fetches = 0
        self._lock = threading.Lock()
        self._keys: _Keys | None = None
        self._fetched_at = -math.inf
        self._attempted_at = -math.inf
        self._last_error: TokenError | None = None

    def key_for(self, kid: str | None, alg: str) -> jwt.PyJWK:
        keys = self._keys
        if keys is None or time.monotonic() - self._fetched_at >= self.ttl:
            keys = self._refresh(seen=keys)
        key = keys.find(kid, alg)
        if key is None:
            keys = self._refresh(seen=keys)  # key rotation: the issuer may have published a new key
            key = keys.find(kid, alg)
            if key is None:
                raise TokenError(
                    f"no key with kid {kid!r} in {self.description}, even after refreshing it; "
                    "the token was not signed by this issuer's current keys",
                    cause="unknown_kid",
                )
        return key

    def _refresh(self, *, seen: _Keys | None) -> _Keys:
        with self._lock:
            if self._keys is not None and self._keys is not seen:
                return self._keys  # another thread refreshed while we waited
            now = time.monotonic()
            if now - self._attempted_at < self.refresh_cooldown:
                if self._keys is not None:
                    return self._keys
                if self._last_error is not None:
                    raise self._last_error
            self._attempted_at = now
            try:
                keys = _Keys(self._fetch_document(), self.description)
            except TokenError as e:
                self._last_error = e
                if self._keys is not None:
                    log.warning("governed_db: refreshing %s failed (%s); keeping the cached keys", self.description, e)
                    return self._keys
                raise
            self._keys, self._fetched_at, self._last_error = keys, now, None
            return keys

    def _fetch_document(self) -> Any:
        # one deadline for discovery and the JWKS together: the statement waiting on them waits at most this
        with Deadline(self.timeout).running() as deadline:
            if self.jwks_url is None:
                self.jwks_url = self._discover(deadline)
            self.fetches += 1
            return fetch_json(self.jwks_url, deadline=deadline, allow_insecure_http_for_loopback=self.allow_http)

    def _discover(self, deadline: Deadline) -> str:
        issuer = str(self.issuer)
        url = issuer.rstrip("/") + "/.well-known/openid-configuration"
        meta = fetch_json(url, deadline=deadline, allow_insecure_http_for_loopback=self.allow_http)
        if not isinstance(meta, Mapping) or not isinstance(meta.get("jwks_uri"), str):
            raise TokenError(f"{url} has no jwks_uri; is {issuer!r} an OpenID issuer?", cause="jwks_unreachable")
        # OpenID Connect Discovery §4.3: the metadata must name the issuer we asked about
        if str(meta.get("issuer", "")).rstrip("/") != issuer.rstrip("/"):
            raise TokenError(
                f"{url} names issuer {meta.get('issuer')!r}, not the configured {issuer!r}; "
                "configure the exact issuer string the provider publishes",
                cause="jwks_unreachable",
            )
        return check_url(meta["jwks_uri"], allow_insecure_http_for_loopback=self.allow_http, what="jwks_uri")


_shared: dict[tuple[Any, ...], RemoteJWKS] = {}
_shared_lock = threading.Lock()
_MAX_SHARED = 64


def remote_jwks(**kwargs: Any) -> RemoteJWKS:
    """A :class:`RemoteJWKS` shared by every verifier with the same URL and settings (one cache per process)."""
    key = tuple(sorted(kwargs.items()))
    with _shared_lock:
        source = _shared.get(key)
        if source is None:
            source = RemoteJWKS(**kwargs)
            if len(_shared) >= _MAX_SHARED:
                _shared.pop(next(iter(_shared)))
            _shared[key] = source
        return source


def clear_shared() -> None:
    """Forget every cached remote JWKS (tests; after changing trust configuration at run time)."""
    with _shared_lock:
        _shared.clear()


__all__ = [
    "DEFAULT_REFRESH_COOLDOWN",
    "DEFAULT_TIMEOUT",
    "DEFAULT_TTL",
    "KeySource",
    "RemoteJWKS",
    "StaticJWKS",
    "check_url",
    "clear_shared",
    "fetch_json",
    "load_jwks_document",
    "remote_jwks",
]
