"""Policy files: YAML in, a validated :class:`~governed_db.policy.Policy` out.

Every problem is reported with file, line and the offending key, and an
invalid file is an error - never an "allow all" policy. See
``docs/policy.md`` for the format; in short::

    name: acme
    environments: {qa: staging, sandbox: observe}
    rules:
      drop: deny                                  # every environment
      ddl: {production: require_approval, staging: warn}
      table-deny: {tables: [payroll, "secrets.*"]}
      max-rows: {limit: 5000}
    overrides:
      - when: {kind: agent, environment: production}
        rules: {write-statement: require_approval}
    identities: {require_verified: [production]}
    python_rules: ["acme.guardrails:no_friday_writes"]
    limits:
      - when: {kind: agent}
        statements_per_minute: 120
        rows_per_minute: 100000
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from governed_db.decision import Action
from governed_db.errors import ConfigurationError
from governed_db.identity import KINDS
from governed_db.policy_settings import LimitSpec, Override, PolicySettings, Scope

_TOP = ("name", "version", "description", "environments", "rules", "overrides", "identities", "limits",
        "python_rules", "approvals")  # fmt: skip
#: review settings a policy may impose on approvals (see docs/approvals.md); value checks per key
_APPROVAL_KEYS: dict[str, str] = {"quorum": "int", "reviewer_roles": "strings", "reason_required": "bool",
                                  "require_verified_reviewer": "bool", "request_ttl": "seconds",
                                  "grant_ttl": "seconds"}  # fmt: skip
_WHEN = ("environment", "environments", "kind", "kinds", "role", "roles", "subject", "subjects", "on_behalf_of",
         "verified", "table", "tables", "dialect", "dialects")  # fmt: skip
_ENV_CLASSES = ("production", "staging", "observe")
_ACTIONS = tuple(a.value for a in Action)


@dataclass(frozen=True)
class PolicyProblem:
    file: str
    line: int | None
    key: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.key}: {self.message}"


class PolicyFileError(ConfigurationError):
    """An invalid policy. ``problems`` lists every problem found (file, line, key, message)."""

    def __init__(self, problems: list[PolicyProblem]):
        first = problems[0]
        more = f" (and {len(problems) - 1} more problem(s); run: governed-db policy lint {first.file})" if len(
            problems) > 1 else ""  # fmt: skip
        super().__init__(f"invalid policy: {first}{more}")
        self.problems = problems
        self.file, self.line, self.key = first.file, first.line, first.key


class _Map(dict[Any, Any]):
    line: int | None = None
    lines: dict[Any, int]


class _Seq(list[Any]):
    line: int | None = None


class _Loader(yaml.SafeLoader):
    """SafeLoader that remembers the line of every mapping key and reports duplicate keys."""

    duplicates: list[tuple[str, int]]

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:  # type: ignore[override]
        out = _Map()
        out.line = node.start_mark.line + 1
        out.lines = {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=True)  # type: ignore[no-untyped-call]
            if key in out:
                self.duplicates.append((str(key), key_node.start_mark.line + 1))
            out[key] = self.construct_object(value_node, deep=True)  # type: ignore[no-untyped-call]
            out.lines[key] = key_node.start_mark.line + 1
        return out

    def construct_sequence(self, node: yaml.SequenceNode, deep: bool = False) -> list[Any]:  # type: ignore[override]
        out = _Seq(self.construct_object(child, deep=True) for child in node.value)  # type: ignore[no-untyped-call]
        out.line = node.start_mark.line + 1
        return out


_Loader.add_constructor("tag:yaml.org,2002:map", _Loader.construct_mapping)
_Loader.add_constructor("tag:yaml.org,2002:seq", _Loader.construct_sequence)


def read_policy_file(path: str | Path) -> Any:
    """Parse and validate ``path``; raises :class:`PolicyFileError` listing every problem."""
    policy, problems = check_policy_file(path)
    if problems:
        raise PolicyFileError(problems)
    return policy


def check_policy_file(path: str | Path) -> tuple[Any, list[PolicyProblem]]:
    """(policy or None, problems) - what ``governed-db policy lint`` reports."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        return None, [PolicyProblem(name, None, "<file>", f"cannot read the policy file ({e})")]
    loader = _Loader(text)
    loader.duplicates = []
    try:
        data = loader.get_single_data()
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        return None, [PolicyProblem(name, line, "<yaml>", f"not valid YAML: {getattr(e, 'problem', e)}")]
    finally:
        loader.dispose()
    problems = [PolicyProblem(name, line, key, "duplicate key (the later value would silently win)")
                for key, line in loader.duplicates]  # fmt: skip
    if data is None:
        problems.append(PolicyProblem(name, 1, "<file>", "the policy file is empty; an empty policy is not 'allow all'"))
        return None, problems
    return _build(data, name, problems)


def policy_from_mapping(data: Mapping[str, Any], *, source_name: str = "<mapping>") -> Any:
    policy, problems = _build(data, source_name, [])
    if problems:
        raise PolicyFileError(problems)
    return policy


class _Builder:
    def __init__(self, file: str, problems: list[PolicyProblem]) -> None:
        self.file = file
        self.problems = problems

    def bad(self, parent: Any, key: Any, path: str, message: str) -> None:
        lines = getattr(parent, "lines", {})
        line = lines.get(key) if isinstance(lines, dict) else None
        self.problems.append(PolicyProblem(self.file, line or getattr(parent, "line", None), path, message))

    def action(self, parent: Any, key: Any, path: str, value: Any) -> Action | None:
        if isinstance(value, str) and value.strip().lower() in _ACTIONS:
            return Action(value.strip().lower())
        self.bad(parent, key, path, f"{value!r} is not an action; use one of {', '.join(_ACTIONS)}")
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
                self.bad(when, k, p, f"unknown condition{_suggest(k, _WHEN)}; valid: {', '.join(_WHEN)}")
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


def _suggest(word: Any, choices: Any) -> str:
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _build(data: Any, file: str, problems: list[PolicyProblem]) -> tuple[Any, list[PolicyProblem]]:
    from governed_db.policy import Policy
    from governed_db.ratelimit import RateLimiter
    from governed_db.rules import catalog

    b = _Builder(file, problems)
    if not isinstance(data, dict):
        b.bad(data, None, "<file>", "a policy is a mapping with keys like rules:, overrides:, limits:")
        return None, problems
    for k in data:
        if k not in _TOP:
            b.bad(data, k, str(k), f"unknown top-level key{_suggest(k, _TOP)}; valid: {', '.join(_TOP)}")
    specs = catalog()
    environments: dict[str, str] = {}
    envs = data.get("environments") or {}
    if not isinstance(envs, dict):
        b.bad(data, "environments", "environments", "expected a mapping of environment -> production/staging/observe")
        envs = {}
    for env, cls in envs.items():
        value = cls.get("like") if isinstance(cls, dict) else cls
        if value not in _ENV_CLASSES:
            b.bad(envs, env, f"environments.{env}", f"{value!r} is not an environment class; use {', '.join(_ENV_CLASSES)}")
        else:
            environments[str(env).lower()] = str(value)
    actions: dict[str, dict[str, Action]] = {}
    options: dict[str, dict[str, Any]] = {}
    rules = data.get("rules") or {}
    if not isinstance(rules, dict):
        b.bad(data, "rules", "rules", "expected a mapping of rule id -> action or settings")
        rules = {}
    for rid, cfg in rules.items():
        path = f"rules.{rid}"
        spec = specs.get(rid)
        if spec is None:
            b.bad(rules, rid, path, f"unknown rule{_suggest(rid, specs)}; see docs/reference/rules.md")
            continue
        if isinstance(cfg, str):
            act = b.action(rules, rid, path, cfg)
            if act is not None:
                actions[rid] = {"*": act}
            continue
        if not isinstance(cfg, dict):
            b.bad(rules, rid, path, "expected an action (deny, warn, ...) or a mapping of settings")
            continue
        per_env: dict[str, Action] = {}
        opts: dict[str, Any] = {}
        for k, v in cfg.items():
            p = f"{path}.{k}"
            if k in spec.options:
                opts[k] = _option(b, cfg, k, p, v, spec.options[k])
            elif k == "action":
                if isinstance(v, dict):
                    for env, a in v.items():
                        act = b.action(v, env, f"{p}.{env}", a)
                        if act is not None:
                            per_env[str(env).lower()] = act
                else:
                    act = b.action(cfg, k, p, v)
                    if act is not None:
                        per_env["*"] = act
            elif isinstance(v, str) and v.lower() in _ACTIONS:
                per_env[str(k).lower()] = Action(v.lower())
            else:
                valid = ", ".join(("action", *spec.options)) or "action"
                b.bad(cfg, k, p, f"unknown setting for rule {rid}{_suggest(k, spec.options)}; valid: {valid}")
        if per_env:
            actions[rid] = per_env
        if opts:
            options[rid] = opts
    overrides = _overrides(b, data, specs)
    ident = data.get("identities") or {}
    if not isinstance(ident, dict):
        b.bad(data, "identities", "identities", "expected a mapping, e.g. {require_verified: [production]}")
    else:
        for k, v in ident.items():
            if k != "require_verified":
                b.bad(ident, k, f"identities.{k}", f"unknown setting{_suggest(k, ['require_verified'])}")
            else:
                envs_required = tuple(e.lower() for e in b.strings(ident, k, "identities.require_verified", v))
                options.setdefault("identity-unverified", {})["environments"] = envs_required
    limits = _limits(b, data)
    python_rules = _python_rules(b, data)
    approvals = _approvals(b, data)
    if problems:
        return None, problems
    settings = PolicySettings(actions=actions, options=options, overrides=overrides, environments=environments,
                              limits=limits)  # fmt: skip
    name = str(data.get("name") or Path(file).stem)
    limiter = RateLimiter(limits, settings) if limits else None
    extra = {"approvals": approvals} if approvals is not None else {}
    return Policy(name=name, settings=settings, limiter=limiter, source=file, extra_rules=python_rules,
                  extra=extra), problems  # fmt: skip


def _approvals(b: _Builder, data: Any) -> dict[str, Any] | None:
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
            b.bad(raw, k, p, f"unknown setting{_suggest(k, _APPROVAL_KEYS)}; valid: {', '.join(_APPROVAL_KEYS)}")
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


def _python_rules(b: _Builder, data: Any) -> tuple[Any, ...]:
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


def _option(b: _Builder, parent: Any, key: Any, path: str, value: Any, default: Any) -> Any:
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


def _overrides(b: _Builder, data: Any, specs: Mapping[str, Any]) -> tuple[Override, ...]:
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
                    b.bad(rules, rid, f"{path}.rules.{rid}", f"unknown rule{_suggest(rid, specs)}")
                    continue
                act = b.action(rules, rid, f"{path}.rules.{rid}", a)
                if act is not None:
                    acts[str(rid)] = act
        out.append(Override(when, acts, getattr(item, "line", None)))
    return tuple(out)


def _limits(b: _Builder, data: Any) -> tuple[LimitSpec, ...]:
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
                b.bad(item, k, f"{path}.{k}", f"unknown key{_suggest(k, valid)}; valid: {', '.join(valid)}")
        when = b.scope(item, "when", f"{path}.when", item.get("when", {}))
        if when.tables or when.dialects:
            b.bad(item, "when", f"{path}.when", "limits count per identity; they cannot be scoped by tables or dialect")
        spm = _option(b, item, "statements_per_minute", f"{path}.statements_per_minute",
                      item.get("statements_per_minute"), None)  # fmt: skip
        rpm = _option(b, item, "rows_per_minute", f"{path}.rows_per_minute", item.get("rows_per_minute"), None)
        if spm is None and rpm is None:
            b.bad(item, None, path, "a limit needs statements_per_minute and/or rows_per_minute")
        act = b.action(item, "action", f"{path}.action", item["action"]) if "action" in item else None
        out.append(LimitSpec(when, spm, rpm, act))
    return tuple(out)


__all__ = ["PolicyFileError", "PolicyProblem", "check_policy_file", "policy_from_mapping", "read_policy_file"]
