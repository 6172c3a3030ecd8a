"""Pieces of policy-file validation: located problems, a builder that reports them, and the sections.

Split from :mod:`governed_db.policy.file` (which owns the YAML loader and assembles the policy); every
function here records problems on the builder instead of raising, so one lint run lists them all.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from governed_db.identity import KINDS
from governed_db.policy.decision import Action
from governed_db.policy.settings import LimitSpec, Override, Scope, WriteSpec

_WHEN = ("environment", "environments", "kind", "kinds", "role", "roles", "subject", "subjects", "on_behalf_of",
         "verified", "table", "tables", "dialect", "dialects")  # fmt: skip
ACTIONS = tuple(a.value for a in Action)
#: review settings a policy may impose on approvals (see docs/approvals.md); value checks per key
_APPROVAL_KEYS: dict[str, str] = {"quorum": "int", "reviewer_roles": "strings", "reason_required": "bool",
                                  "require_verified_reviewer": "bool", "request_ttl": "seconds",
                                  "grant_ttl": "seconds"}  # fmt: skip


@dataclass(frozen=True)
class PolicyProblem:
    file: str
    line: int | None
    key: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.key}: {self.message}"


class Builder:
    """Collects located problems while a policy is assembled (never raises: lint lists them all)."""

    def __init__(self, file: str, problems: list[PolicyProblem]) -> None:
        self.file = file
        self.problems = problems

    def bad(self, parent: Any, key: Any, path: str, message: str) -> None:
        lines = getattr(parent, "lines", {})
        line = lines.get(key) if isinstance(lines, dict) else None
        self.problems.append(PolicyProblem(self.file, line or getattr(parent, "line", None), path, message))

    def action(self, parent: Any, key: Any, path: str, value: Any) -> Action | None:
        if isinstance(value, str) and value.strip().lower() in ACTIONS:
            return Action(value.strip().lower())
        self.bad(parent, key, path, f"{value!r} is not an action; use one of {', '.join(ACTIONS)}")
        return None

    def strings(self, parent: Any, key: Any, path: str, value: Any) -> tuple[str, ...]:
        items = [value] if isinstance(value, (str, int)) else value
        if not isinstance(items, list) or not all(isinstance(v, (str, int)) for v in items):
            self.bad(parent, key, path, "expected a string or a list of strings")
            return ()
        return tuple(str(v) for v in items)

    def scope(self, parent: Any, key: Any, path: str, when: Any) -> Scope:
        if not isinstance(when, dict):
            self.bad(parent, key, path, "expected a mapping of conditions (environment, kind, roles, subject, ...)")
            return Scope()
        fields: dict[str, Any] = {}
        for k, v in when.items():
            p = f"{path}.{k}"
            if k not in _WHEN:
                self.bad(when, k, p, f"unknown condition{suggest(k, _WHEN)}; valid: {', '.join(_WHEN)}")
                continue
            base = str(k).rstrip("s") if k not in ("on_behalf_of", "verified") else k
            if base == "verified":
                if not isinstance(v, bool):
                    self.bad(when, k, p, "expected true or false")
                fields["verified"] = bool(v)
            elif base == "on_behalf_of":
                fields["on_behalf_of"] = () if v is None else self.strings(when, k, p, v)
            else:
                values = self.strings(when, k, p, v)
                if base == "environment":
                    values = tuple(x.lower() for x in values)
                if base == "kind":
                    for x in values:
                        if x not in KINDS:
                            self.bad(when, k, p, f"{x!r} is not an identity kind; use {', '.join(KINDS)}")
                field = {"environment": "environments", "kind": "kinds", "role": "roles", "subject": "subjects",
                         "table": "tables", "dialect": "dialects"}[base]  # fmt: skip
                fields[field] = values
        return Scope(**fields)


def suggest(word: Any, choices: Any) -> str:
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def approvals(b: Builder, data: Any) -> dict[str, Any] | None:
    """``approvals:`` review settings the policy imposes (they override the connection's approvals option)."""
    raw = data.get("approvals")
    if raw is None:
        return None
    if not isinstance(raw, dict):
        b.bad(data, "approvals", "approvals", "expected a mapping, e.g. {quorum: 2, reviewer_roles: [dba]}")
        return None
    out: dict[str, Any] = {}
    for k, v in raw.items():
        p = f"approvals.{k}"
        kind = _APPROVAL_KEYS.get(str(k))
        if kind is None:
            b.bad(raw, k, p, f"unknown setting{suggest(k, _APPROVAL_KEYS)}; valid: {', '.join(_APPROVAL_KEYS)}")
        elif kind == "strings":
            out[k] = b.strings(raw, k, p, v)
        elif kind == "bool":
            if not isinstance(v, bool):
                b.bad(raw, k, p, "expected true or false")
            out[k] = bool(v)
        elif isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0 or (kind == "int" and not isinstance(v, int)):
            b.bad(raw, k, p, f"expected a positive {'integer' if kind == 'int' else 'number of seconds'}, got {v!r}")
        else:
            out[k] = v
    return out


def python_rules(b: Builder, data: Any) -> tuple[Any, ...]:
    """``python_rules: ["package.module:function", ...]`` - rule callables ``rule(stmt, ctx)`` imported by name."""
    import importlib

    raw = data.get("python_rules") or []
    names = b.strings(data, "python_rules", "python_rules", raw) if raw else ()
    out = []
    for i, ref in enumerate(names):
        path = f"python_rules[{i}]"
        module, _, attr = ref.partition(":")
        if not module or not attr:
            b.bad(data, "python_rules", path, f"{ref!r} is not 'package.module:function'")
            continue
        try:
            obj: Any = importlib.import_module(module)
            for part in attr.split("."):
                obj = getattr(obj, part)
        except (ImportError, AttributeError) as e:
            b.bad(data, "python_rules", path, f"cannot import {ref!r} ({type(e).__name__}: {e})")
            continue
        if not callable(obj):
            b.bad(data, "python_rules", path, f"{ref!r} is not callable; a rule is rule(stmt, ctx) -> RuleHit | None")
            continue
        out.append(obj)
    return tuple(out)


def option(b: Builder, parent: Any, key: Any, path: str, value: Any, default: Any) -> Any:
    if isinstance(default, (tuple, list)):
        return b.strings(parent, key, path, value)
    if isinstance(default, bool):
        if not isinstance(value, bool):
            b.bad(parent, key, path, "expected true or false")
        return bool(value)
    if isinstance(default, int) or default is None:
        if value is None and default is None:
            return None
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            b.bad(parent, key, path, f"expected a positive integer, got {value!r}")
            return default
        return value
    return value


def overrides(b: Builder, data: Any, specs: Mapping[str, Any]) -> tuple[Override, ...]:
    raw = data.get("overrides") or []
    if not isinstance(raw, list):
        b.bad(data, "overrides", "overrides", "expected a list of {when: ..., rules: ...}")
        return ()
    out = []
    for i, item in enumerate(raw):
        path = f"overrides[{i}]"
        if not isinstance(item, dict):
            b.problems.append(PolicyProblem(b.file, getattr(raw, "line", None), path, "expected {when: ..., rules: ...}"))
            continue
        for k in item:
            if k not in ("when", "rules"):
                b.bad(item, k, f"{path}.{k}", "unknown key; an override has 'when' and 'rules'")
        when = b.scope(item, "when", f"{path}.when", item.get("when", {}))
        rules = item.get("rules")
        acts: dict[str, Action] = {}
        if not isinstance(rules, dict) or not rules:
            b.bad(item, "rules" if "rules" in item else None, f"{path}.rules", "expected a mapping of rule id -> action")
        else:
            for rid, a in rules.items():
                if rid != "*" and rid not in specs:
                    b.bad(rules, rid, f"{path}.rules.{rid}", f"unknown rule{suggest(rid, specs)}")
                    continue
                act = b.action(rules, rid, f"{path}.rules.{rid}", a)
                if act is not None:
                    acts[str(rid)] = act
        out.append(Override(when, acts, getattr(item, "line", None)))
    return tuple(out)


def limits(b: Builder, data: Any) -> tuple[LimitSpec, ...]:
    raw = data.get("limits") or []
    if not isinstance(raw, list):
        b.bad(data, "limits", "limits", "expected a list of {when:, statements_per_minute:, rows_per_minute:}")
        return ()
    out = []
    valid = ("when", "statements_per_minute", "rows_per_minute", "action")
    for i, item in enumerate(raw):
        path = f"limits[{i}]"
        if not isinstance(item, dict):
            b.problems.append(PolicyProblem(b.file, getattr(raw, "line", None), path, "expected a mapping"))
            continue
        for k in item:
            if k not in valid:
                b.bad(item, k, f"{path}.{k}", f"unknown key{suggest(k, valid)}; valid: {', '.join(valid)}")
        when = b.scope(item, "when", f"{path}.when", item.get("when", {}))
        if when.tables or when.dialects:
            b.bad(item, "when", f"{path}.when", "limits count per identity; they cannot be scoped by tables or dialect")
        spm = option(b, item, "statements_per_minute", f"{path}.statements_per_minute",
                      item.get("statements_per_minute"), None)  # fmt: skip
        rpm = option(b, item, "rows_per_minute", f"{path}.rows_per_minute", item.get("rows_per_minute"), None)
        if spm is None and rpm is None:
            b.bad(item, None, path, "a limit needs statements_per_minute and/or rows_per_minute")
        act = b.action(item, "action", f"{path}.action", item["action"]) if "action" in item else None
        out.append(LimitSpec(when, spm, rpm, act))
    return tuple(out)


def limit_storage(b: Builder, data: Any, limits: tuple[LimitSpec, ...]) -> Any:
    """The ``limit_storage:`` section (shared limits in Redis), or ``None`` when limits count in process."""
    if "limit_storage" not in data:
        return None
    from governed_db.policy.ratelimit_redis import parse_limit_storage

    try:
        storage = parse_limit_storage(data["limit_storage"])
    except ValueError as e:
        b.bad(data, "limit_storage", "limit_storage", str(e))
        return None
    if not limits:
        b.bad(data, "limit_storage", "limit_storage", "limit_storage is set but there are no limits: to share")
        return None
    return storage
_WRITES_KEYS = ("when", "guard", "max_affected_rows", "over_limit", "whole_table", "read_only", "database_role",
                "session_claims")  # fmt: skip
_EFFECT_ACTIONS = (Action.DENY, Action.REQUIRE_APPROVAL)


def writes(b: Builder, data: Any) -> tuple[WriteSpec, ...]:
    """``writes:`` - effect guard, read-only sessions and database roles per scope (docs/guardrails.md)."""
    raw = data.get("writes") or []
    if not isinstance(raw, list):
        b.bad(data, "writes", "writes", "expected a list of {when:, max_affected_rows:, over_limit:, read_only:, ...}")
        return ()
    out = []
    for i, item in enumerate(raw):
        path = f"writes[{i}]"
        if not isinstance(item, dict):
            b.problems.append(PolicyProblem(b.file, getattr(raw, "line", None), path, "expected a mapping"))
            continue
        for k in item:
            if k not in _WRITES_KEYS:
                b.bad(item, k, f"{path}.{k}", f"unknown key{suggest(k, _WRITES_KEYS)}; valid: {', '.join(_WRITES_KEYS)}")
        when = b.scope(item, "when", f"{path}.when", item.get("when", {}))
        if when.tables:
            b.bad(item, "when", f"{path}.when", "writes: entries apply to identities; they cannot be scoped by tables")
        fields: dict[str, Any] = {}
        for k in ("guard", "read_only", "session_claims"):
            if k in item:
                if not isinstance(item[k], bool):
                    b.bad(item, k, f"{path}.{k}", "expected true or false")
                fields[k] = bool(item[k])
        if "max_affected_rows" in item:
            v = item["max_affected_rows"]
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                b.bad(item, "max_affected_rows", f"{path}.max_affected_rows", f"expected a whole number >= 0, got {v!r}")
            else:
                fields["max_affected_rows"] = v
        for k in ("over_limit", "whole_table"):
            if k in item:
                act = b.action(item, k, f"{path}.{k}", item[k])
                if act is not None and act not in _EFFECT_ACTIONS:
                    b.bad(item, k, f"{path}.{k}", f"{act.value!r} would keep the write; use deny or require_approval")
                elif act is not None:
                    fields[k] = act
        if "database_role" in item:
            v = item["database_role"]
            if not isinstance(v, str) or not v.strip():
                b.bad(item, "database_role", f"{path}.database_role", "expected the name of a database role")
            else:
                fields["database_role"] = v.strip()
        out.append(WriteSpec(when, line=getattr(item, "line", None), **fields))
    return tuple(out)
