"""From verified claims to an :class:`~governed_db.identity.Identity`.

The default :class:`ClaimsMap` reads the claim shapes of Okta and Azure AD /
Entra ID (v1 and v2 tokens) and of RFC 9068 access tokens; any other OIDC
issuer is one ``ClaimsMap(...)`` (or a dict with the same keys) away. Claim
names may be dotted paths into nested objects (Keycloak's
``realm_access.roles``); a claim whose literal name contains dots (Auth0's
namespaced ``https://example.com/roles``) is found first.

What kind of principal a token stands for:

* an RFC 8693 ``act`` claim (token exchange) → ``agent``: the actor is the
  subject, ``on_behalf_of`` the user the token was issued for;
* a client-credentials token (no user: Azure ``idtyp=app``, or ``sub`` equal
  to the client id as in Okta) → ``service``, or ``agent`` when the client is
  listed in ``agent_clients`` or ``client_kind="agent"``;
* a user token → ``human`` — or, when its client (``azp``/``appid``/``cid``)
  is listed in ``agent_clients`` (an agent using Azure's on-behalf-of flow),
  ``agent`` acting for that user.

Roles are the values of the ``roles`` claims (``groups`` and ``roles`` by
default), translated through ``role_map`` when one is given.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any, Literal

from governed_db.errors import ConfigurationError
from governed_db.identity import Identity
from governed_db.tokens.errors import TokenError

_MISSING = object()


def _tuple(value: Any, name: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, Sequence) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ConfigurationError(f"claims_map.{name} must be a claim name or a list of claim names, got {value!r}")


@dataclass(frozen=True, kw_only=True)
class ClaimsMap:
    """Which claims say who, what roles, which client; how groups become policy roles.

    Each ``*_claims`` field lists claim names tried in order (first present wins,
    except ``role_claims`` and ``scope_claims``, which are all read).
    """

    #: who a user token is for; a readable name first, the stable id last
    subject_claims: tuple[str, ...] = ("preferred_username", "upn", "email", "unique_name", "sub")
    #: the OAuth client that obtained the token (RFC 9068, Azure v2, Azure v1, Okta)
    client_claims: tuple[str, ...] = ("client_id", "azp", "appid", "cid")
    #: claims whose values become roles (lists, or space-separated strings)
    role_claims: tuple[str, ...] = ("groups", "roles")
    #: claims holding granted scopes (Azure ``scp`` string, Okta ``scp`` list, RFC 8693 ``scope``)
    scope_claims: tuple[str, ...] = ("scp", "scope")
    #: the token's unique id (``jti``; Azure AD puts it in ``uti``)
    token_id_claims: tuple[str, ...] = ("jti", "uti")
    #: group/role value → policy role(s); a key may be qualified by claim ("groups:Admins")
    role_map: Mapping[str, str | Sequence[str]] | None = None
    #: with a role_map: keep values it does not mention (False: only mapped roles count)
    keep_unmapped_roles: bool = False
    #: what a client-credentials token is: a "service" or an "agent"
    client_kind: Literal["service", "agent"] = "service"
    #: client ids whose tokens are agents (also for user tokens: then acting for that user)
    agent_clients: frozenset[str] = frozenset()
    #: client id → readable name used as the subject (e.g. {"0oa8f...": "report-bot"})
    client_names: Mapping[str, str] = field(default_factory=dict)
    #: extra Identity attributes: attribute name → claim name
    attributes: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        for name in ("subject_claims", "client_claims", "role_claims", "scope_claims", "token_id_claims"):
            set_(self, name, _tuple(getattr(self, name), name))
        if self.client_kind not in ("service", "agent"):
            raise ConfigurationError(f"claims_map.client_kind must be 'service' or 'agent', got {self.client_kind!r}")
        if isinstance(self.agent_clients, str):
            set_(self, "agent_clients", frozenset({self.agent_clients}))
        else:
            set_(self, "agent_clients", frozenset(self.agent_clients))
        if self.role_map is not None:
            if not isinstance(self.role_map, Mapping):
                raise ConfigurationError("claims_map.role_map must be a mapping of group/role value → role(s)")
            set_(self, "role_map", MappingProxyType({str(k): _tuple(v, "role_map") for k, v in self.role_map.items()}))
        set_(self, "client_names", MappingProxyType(dict(self.client_names)))
        set_(self, "attributes", MappingProxyType(dict(self.attributes)))

    @classmethod
    def from_value(cls, value: ClaimsMap | Mapping[str, Any] | None) -> ClaimsMap:
        """A ClaimsMap from itself, a dict of its field names (``claims_map={...}``), or None (defaults)."""
        if value is None:
            return DEFAULT_CLAIMS_MAP
        if isinstance(value, ClaimsMap):
            return value
        if isinstance(value, Mapping):
            known = {f.name for f in fields(cls)}
            unknown = sorted(set(value) - known)
            if unknown:
                raise ConfigurationError(
                    f"claims_map has unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(sorted(known))}"
                )
            return cls(**dict(value))
        raise ConfigurationError(f"claims_map must be a ClaimsMap, a dict or None, got {type(value).__name__}")

    def map_roles(self, claims: Mapping[str, Any]) -> tuple[str, ...]:
        roles: list[str] = []
        for claim in self.role_claims:
            for value in _values(claim_value(claims, claim)):
                if self.role_map is None:
                    roles.append(value)
                    continue
                mapped = self.role_map.get(f"{claim}:{value}") or self.role_map.get(value)
                if mapped is not None:
                    roles.extend(mapped)
                elif self.keep_unmapped_roles:
                    roles.append(value)
        return tuple(dict.fromkeys(roles))


DEFAULT_CLAIMS_MAP = ClaimsMap()


def claim_value(claims: Mapping[str, Any], name: str) -> Any:
    """``claims[name]``, else the dotted path ``a.b.c`` into nested objects; ``None`` when absent."""
    value = claims.get(name, _MISSING)
    if value is not _MISSING:
        return value
    if "." not in name:
        return None
    node: Any = claims
    for part in name.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _values(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return value.split()
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value if isinstance(v, (str, int)) and not isinstance(v, bool)]
    return []


def _first(claims: Mapping[str, Any], names: Sequence[str]) -> str | None:
    for name in names:
        value = claim_value(claims, name)
        if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value).strip():
            return str(value).strip()
    return None


def is_client_token(claims: Mapping[str, Any], client_id: str | None) -> bool:
    """True for a token with no user in it (OAuth client credentials)."""
    if claims.get("idtyp") == "app":  # Azure AD optional claim, the explicit signal
        return True
    if claims.get("uid"):  # Okta puts the user's id in uid on user tokens
        return False
    sub = claims.get("sub")
    if sub is not None and client_id is not None and sub == client_id:  # Okta: sub == cid
        return True
    # Azure AD app-only tokens: sub == oid (the service principal), no delegated scopes
    return bool(sub is not None and sub == claims.get("oid") and "scp" not in claims and "upn" not in claims)


def identity_from_claims(claims: Mapping[str, Any], cmap: ClaimsMap, *, issuer: str | None) -> Identity:
    """The Identity verified ``claims`` stand for (the caller has checked signature, iss, aud, exp)."""
    client_id = _first(claims, cmap.client_claims)
    scopes = [s for claim in cmap.scope_claims for s in _values(claim_value(claims, claim))]
    attributes: dict[str, str] = {}
    for attr, claim in (("idp_subject", "sub"), ("oid", "oid"), ("tenant", "tid")):
        value = _first(claims, (claim,))
        if value is not None:
            attributes[attr] = value
    if client_id is not None:
        attributes["client_id"] = client_id
    if scopes:
        attributes["scopes"] = " ".join(dict.fromkeys(scopes))
    for attr, claim in cmap.attributes.items():
        value = claim_value(claims, claim)
        if value is not None:
            attributes[attr] = " ".join(_values(value)) if isinstance(value, list) else str(value)

    client_name = cmap.client_names.get(client_id, client_id) if client_id is not None else None
    on_behalf_of: str | None = None
    kind: Literal["human", "agent", "service"]
    act = claims.get("act")
    if isinstance(act, Mapping):
        # RFC 8693 §4.1: sub is who the token is about, act is who is acting; nested act = earlier actors
        actor = _first(act, ("sub", "client_id", *cmap.client_claims))
        if actor is None:
            raise TokenError("the token's act claim names no actor (no sub or client_id in it)", cause="no_subject")
        subject = cmap.client_names.get(actor, actor)
        kind = "agent"
        on_behalf_of = _user_subject(claims, cmap, client_id)
        chain: list[str] = []
        node = act.get("act")
        while isinstance(node, Mapping) and len(chain) < 16:
            earlier = _first(node, ("sub", "client_id"))
            if earlier:
                chain.append(earlier)
            node = node.get("act")
        if chain:
            attributes["prior_actors"] = " ".join(chain)
        attributes["token_type"] = "delegated"
    elif is_client_token(claims, client_id):
        subject = client_name or _require(_first(claims, ("sub",)))
        agentish = cmap.client_kind == "agent" or client_id in cmap.agent_clients
        kind = "agent" if agentish else "service"
        attributes["token_type"] = "client"
    elif client_id is not None and client_id in cmap.agent_clients:
        subject = client_name or client_id
        kind = "agent"
        on_behalf_of = _user_subject(claims, cmap, client_id)
        attributes["token_type"] = "delegated"
    else:
        subject = _require(_first(claims, cmap.subject_claims))
        kind = "human"
        attributes["token_type"] = "user"
    return Identity(
        subject,
        kind=kind,
        on_behalf_of=on_behalf_of,
        roles=cmap.map_roles(claims),
        attributes=attributes,
        verified=True,
        issuer=issuer,
        token_id=_first(claims, cmap.token_id_claims),
    )


def _user_subject(claims: Mapping[str, Any], cmap: ClaimsMap, client_id: str | None) -> str:
    subject = _first(claims, cmap.subject_claims)
    if subject is None:
        return _require(None)
    return cmap.client_names.get(subject, subject) if subject == client_id else subject


def _require(subject: str | None) -> str:
    if subject is None:
        raise TokenError(
            "the token carries none of the claims that name its subject; "
            "set claims_map={'subject_claims': [...]} to the claim your issuer uses",
            cause="no_subject",
        )
    return subject


__all__ = ["DEFAULT_CLAIMS_MAP", "ClaimsMap", "claim_value", "identity_from_claims", "is_client_token"]
