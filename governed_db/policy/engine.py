"""Policies: which rules apply, with which action, where and to whom.

A rule is a callable ``rule(stmt, ctx) -> RuleHit | None`` (structlog-style:
one signature, one job each, composed as a list). The default policy uses
the whole catalog (:mod:`governed_db.policy.rules`, documented in
``docs/reference/rules.md``); a policy file (:mod:`governed_db.policy.file`)
tunes actions per environment, identity and table, and adds rate limits.

Decisions are cached per policy in a bounded LRU (:mod:`governed_db._cache`) keyed by
(SQL or its literal shape, dialect, identity, environment): rules must be pure functions of the statement and
context. Rate limits are not cached - the pipeline asks ``policy.limiter``
separately for every statement.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from governed_db._cache import LRU, STATEMENTS, new_generation
from governed_db.errors import ConfigurationError
from governed_db.identity import Identity
from governed_db.policy.decision import Action, Decision, RuleHit
from governed_db.policy.rules import RuleSpec, catalog, catalog_rules, catalog_version
from governed_db.policy.settings import DEFAULT_SETTINGS, OBSERVE_ONLY, PolicySettings
from governed_db.sql.analysis import Analysis, StatementInfo, analyze

if TYPE_CHECKING:
    from governed_db.policy.ratelimit import RateLimiter

DEFAULT_ENVIRONMENT = "production"
#: the hot decisions (Policy._hot): at most this many, of texts at most this long
_HOT_ENTRIES = 256
_HOT_CHARS = 1024
#: Rules every policy runs even when it lists its own ``rules=``: governed_db fails closed.
FAIL_CLOSED_RULES = ("unparseable", "unknown-statement", "analysis-limit")


@dataclass(frozen=True, slots=True)
class RuleContext:
    analysis: Analysis
    identity: Identity | None
    environment: str
    policy: Policy | None = None
    #: the database the connection is in (``db.namespace``), when known: qualifying a name with it stays local
    database: str | None = None

    @property
    def settings(self) -> PolicySettings:
        return self.policy.settings if self.policy is not None else DEFAULT_SETTINGS

    def options_for(self, spec: RuleSpec) -> Mapping[str, Any]:
        return self.settings.rule_options(spec)

    def action_for(self, spec: RuleSpec, stmt: StatementInfo | None) -> Action:
        tables = stmt.tables if stmt is not None else self.analysis.tables
        return self.settings.action_for(spec, self.environment, self.identity, self.analysis.dialect, tables)


Rule = Callable[[StatementInfo | None, RuleContext], "RuleHit | None"]


@dataclass(frozen=True)
class Policy:
    """An immutable set of rules, their per-environment actions and limits.

    ``rules=None`` (the default) means the whole catalog, including rules
    registered later with :func:`governed_db.policy.rules.register_rule`. Passing
    your own ``rules`` replaces the catalog, except :data:`FAIL_CLOSED_RULES`,
    which always run.
    """

    name: str = "default"
    rules: tuple[Rule, ...] | None = None
    #: environments where rules are observe-only (deny/approval/limit become warn)
    observe_only: frozenset[str] = OBSERVE_ONLY
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    settings: PolicySettings = field(default=DEFAULT_SETTINGS, compare=False, hash=False)
    limiter: RateLimiter | None = field(default=None, compare=False, hash=False)
    #: where the policy came from (a file path), for messages and the record
    source: str | None = field(default=None, compare=False)
    cache_size: int = field(default=STATEMENTS, compare=False)
    #: rule callables run after ``rules`` (or the catalog): how files and :meth:`with_rules` add custom rules
    extra_rules: tuple[Rule, ...] = ()
    _cache: LRU[tuple[Any, ...], Decision] = field(
        default_factory=lambda: LRU("decisions"), init=False, repr=False, compare=False, hash=False
    )
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False, hash=False)
    _state: list[Any] = field(default_factory=lambda: [-1, ()], init=False, repr=False, compare=False, hash=False)
    #: an accelerator in front of ``_cache`` for repeated statements, by ``id(analysis)``: each entry holds the
    #: analysis itself (checked with ``is``, so a recycled id never matches), identity, environment, database
    #: and the rules it was decided under, and answers without building or hashing the cache key
    _hot: dict[int, tuple[Any, ...]] = field(default_factory=dict, init=False, repr=False, compare=False, hash=False)

    def active_rules(self) -> tuple[Rule, ...]:
        """The rule callables this policy runs, in order."""
        version = catalog_version() if self.rules is None else 0
        if self._state[0] == version and self._state[1]:
            return self._state[1]  # type: ignore[no-any-return]
        if self.rules is None:
            rules: tuple[Rule, ...] = catalog_rules()
        else:
            present = {getattr(r, "id", None) for r in self.rules}
            guards = tuple(r for r in catalog_rules() if r.id in FAIL_CLOSED_RULES and r.id not in present)
            rules = (*guards, *self.rules)
        rules = (*rules, *self.extra_rules)
        with self._lock:
            self._state[:] = [version, rules]
            self._cache.clear()  # the catalog changed: earlier decisions may be stale
            self._hot.clear()
            new_generation()  # and the connections' verdicts holding them (decision 0423)
        return rules

    def with_rules(self, *extra: Rule) -> Policy:
        """A copy of this policy with ``extra`` rule callables run after its current rules."""
        return replace(self, extra_rules=(*self.extra_rules, *extra))

    def evaluate(
        self, analysis: Analysis, *, identity: Identity | None, environment: str, database: str | None = None
    ) -> Decision:
        hot = self._hot_decision(analysis, identity, environment, database)
        if hot is not None:
            return hot  # the same rules as active_rules() would return
        # literal SQL judged by its shape shares the shape's decision (governed_db.sql.shapes); its length is
        # the one fact of the text itself a rule reads (statement-size)
        key = (analysis.key, analysis.size, analysis.dialect, identity, environment, database)
        rules = self.active_rules()
        cache = self._cache
        hit = cache.get(key)
        if hit is not None:
            self._remember_hot(analysis, identity, environment, database, rules, hit)
            return hit  # type: ignore[no-any-return]
        decision = self._decide(analysis, identity, environment, rules, database)
        if self.cache_size > 0:
            with self._lock:
                # a rule registered while deciding has already cleared the cache: caching this decision,
                # made without that rule, would serve it unchecked until evicted
                if self._state[1] != rules:
                    return decision
                if cache.maxsize != self.cache_size:
                    cache.maxsize = self.cache_size
                cache.put(key, decision)
            self._remember_hot(analysis, identity, environment, database, rules, decision)
        return decision

    def _remember_hot(
        self, analysis: Analysis, identity: Identity | None, environment: str, database: str | None,
        rules: tuple[Rule, ...], decision: Decision,
    ) -> None:
        if analysis.size > _HOT_CHARS or analysis.shape is not None:
            # the entry keeps the analysis (and its parse trees) alive: only short texts; literal SQL judged by
            # its shape is a new analysis per text (its decision is found by the shape in the cache)
            return
        with self._lock:
            if self._state[1] is not rules:
                return  # the catalog changed meanwhile (and the hot entries were dropped)
            hot = self._hot
            if len(hot) >= _HOT_ENTRIES:
                hot.clear()  # many distinct statements: rebuilding is cheap, and this stays bounded
            hot[id(analysis)] = (analysis, identity, environment, database, rules, decision)

    def answers_hot(
        self, analysis: Analysis, identity: Identity | None, environment: str, database: str | None, decision: Decision
    ) -> bool:
        """Whether :meth:`evaluate` answers ``decision`` for these from its hot entry, so that a connection may keep
        it in a statement's verdict until the next generation (decision 0423): the rules it was made by are still
        the policy's and the catalog's, and the policy keeps its decisions at all (``cache_size``)."""
        return self._hot_decision(analysis, identity, environment, database) is decision

    def _hot_decision(
        self, analysis: Analysis, identity: Identity | None, environment: str, database: str | None
    ) -> Decision | None:
        """The decision kept for this very analysis, identity, environment and database, while the rules it was made
        by are still the policy's and the catalog's; else None."""
        hot = self._hot.get(id(analysis))
        state = self._state
        if (
            hot is not None
            and hot[0] is analysis
            and hot[1] is identity
            and hot[2] == environment
            and hot[3] == database
            and hot[4] is state[1]
            and state[0] == (catalog_version() if self.rules is None else 0)
        ):
            return hot[5]  # type: ignore[no-any-return]
        return None

    def clear_cache(self) -> None:
        with self._lock:
            self._cache.clear()
            self._hot.clear()
            new_generation()

    def _decide(
        self, analysis: Analysis, identity: Identity | None, environment: str, rules: tuple[Rule, ...],
        database: str | None = None,
    ) -> Decision:
        ctx = RuleContext(analysis, identity, environment, self, database)
        hits: list[RuleHit] = []
        targets: Sequence[StatementInfo | None] = analysis.statements or (None,)
        for rule in rules:
            for stmt in targets:
                found = rule(stmt, ctx)
                if found is not None:
                    hits.append(found)
        declared = environment in self.settings.environments
        if self.settings.observe_only(environment) if declared else environment in self.observe_only:
            hits = [
                RuleHit(h.rule_id, Action.WARN, f"{h.reason} (would be {h.action.value} outside {environment})",
                        h.remedy, None, h.undecidable)
                if h.action.severity > Action.WARN.severity
                else h
                for h in hits
            ]  # fmt: skip
        return Decision.combine(hits, environment=environment, dialect=analysis.dialect, policy_name=self.name)


#: The catalog's rule callables when this module was imported (compatibility; ``Policy()`` tracks the catalog).
DEFAULT_RULES: tuple[Rule, ...] = catalog_rules()

_DEFAULT = Policy()


def default_policy() -> Policy:
    return _DEFAULT


_file_cache: dict[str, tuple[tuple[int, int], Policy]] = {}
_file_lock = threading.Lock()


def load_policy(source: Policy | str | os.PathLike[str] | Mapping[str, Any] | None) -> Policy:
    """A :class:`Policy` from a policy object, a YAML file path, a mapping, or ``None`` (the default).

    Files are re-read when they change. An invalid policy raises
    :class:`~governed_db.policy.file.PolicyFileError` (file, line, key); it
    never degrades to "allow all".
    """
    if source is None:
        return _DEFAULT
    if isinstance(source, Policy):
        return source
    from governed_db.policy.file import policy_from_mapping, read_policy_file

    if isinstance(source, Mapping):
        mapped: Policy = policy_from_mapping(source, source_name="<mapping>")
        return mapped
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        try:
            st = path.stat()
        except OSError:
            raise ConfigurationError(
                f"policy file {str(path)!r} does not exist; pass an existing YAML file or policy=None for the "
                "default (production) policy"
            ) from None
        key = str(path.resolve())
        stamp = (st.st_mtime_ns, st.st_size)
        with _file_lock:
            cached = _file_cache.get(key)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        policy: Policy = read_policy_file(path)
        with _file_lock:
            _file_cache[key] = (stamp, policy)
        return policy
    raise ConfigurationError(f"policy must be a Policy, a path, a mapping or None, got {type(source).__name__}")


def evaluate(
    sql: str | bytes,
    *,
    dialect: str,
    environment: str | None = None,
    identity: Identity | None = None,
    policy: Policy | str | os.PathLike[str] | Mapping[str, Any] | None = None,
) -> Decision:
    """Decide about ``sql`` without a connection. Pure; never raises on bad SQL (it fails closed)."""
    if isinstance(sql, (bytes, bytearray, memoryview)):
        sql = bytes(sql).decode("utf-8", errors="replace")
    if not isinstance(sql, str):
        raise ConfigurationError(f"evaluate() takes SQL text (str or bytes), got {type(sql).__name__}")
    if not isinstance(dialect, str) or not dialect:
        raise ConfigurationError("evaluate() needs dialect=, e.g. 'postgres', 'mysql', 'sqlite' or 'duckdb'")
    env = environment or os.environ.get("GOVERNED_DB_ENVIRONMENT") or DEFAULT_ENVIRONMENT
    if not env.islower() or env != env.strip():
        env = env.strip().lower()
    pol = _DEFAULT if policy is None else load_policy(policy)
    return pol.evaluate(analyze(sql, dialect), identity=identity, environment=env)


def rule_ids() -> tuple[str, ...]:
    """Ids of every rule in the catalog."""
    return tuple(catalog())


__all__ = [
    "DEFAULT_ENVIRONMENT",
    "DEFAULT_RULES",
    "FAIL_CLOSED_RULES",
    "Policy",
    "Rule",
    "RuleContext",
    "default_policy",
    "evaluate",
    "load_policy",
    "rule_ids",
]
