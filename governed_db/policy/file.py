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
    writes:                                       # judged by their effect (docs/guardrails.md)
      - when: {kind: agent, environment: production}
        max_affected_rows: 500
        over_limit: require_approval
      - when: {role: analyst}
        read_only: true
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from governed_db.config_files import read_config_text, yaml_message, yaml_problem
from governed_db.errors import ConfigurationError
from governed_db.policy import _file_parts as parts
from governed_db.policy._file_parts import ACTIONS, Builder, PolicyProblem, suggest
from governed_db.policy.decision import Action
from governed_db.policy.settings import PolicySettings

_TOP = ("name", "version", "description", "environments", "rules", "overrides", "identities", "limits",
        "limit_storage", "python_rules", "approvals", "writes")  # fmt: skip
_ENV_CLASSES = ("production", "staging", "observe")


class PolicyFileError(ConfigurationError):
    """An invalid policy. ``problems`` lists every problem found (file, line, key, message)."""

    def __init__(self, problems: list[PolicyProblem]):
        first = problems[0]
        more = f" (and {len(problems) - 1} more problem(s); run: governed-db policy lint {first.file})" if len(
            problems) > 1 else ""  # fmt: skip
        super().__init__(f"invalid policy: {first}{more}")
        self.problems = problems
        self.file, self.line, self.key = first.file, first.line, first.key


#: top-level sections other modules add to policy files: name -> parse(value) (raise ValueError on a problem)
_SECTIONS: dict[str, Callable[[Any], Any]] = {}


def register_section(name: str, parse: Callable[[Any], Any]) -> None:
    """Let policy files carry a ``name:`` section for another module (kept in ``Policy.extra[name]``).

    ``parse(value)`` validates and converts the section; a ``ValueError`` it raises is reported with the
    file, line and key like any other policy problem.
    """
    if name in _TOP:
        raise ValueError(f"{name!r} is a built-in policy section")
    _SECTIONS[name] = parse


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
        text = read_config_text(path, "policy file")
    except ConfigurationError as e:
        return None, [PolicyProblem(name, None, "<file>", str(e))]
    too_much = yaml_problem(text)  # before composing: a 5,000-deep document must not recurse into a crash
    if too_much is not None:
        return None, [PolicyProblem(name, None, "<file>", f"the policy file is refused: {too_much}")]
    try:
        # the loader's reader checks every character when it is made: a NUL or other control character is a
        # ReaderError here, before any parsing (it was a traceback out of every verb taking a policy)
        loader = _Loader(text)
    except yaml.YAMLError as e:
        return None, [PolicyProblem(name, None, "<yaml>", f"not valid YAML: {yaml_message(e)}")]
    loader.duplicates = []
    try:
        data = loader.get_single_data()
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        return None, [PolicyProblem(name, line, "<yaml>", f"not valid YAML: {yaml_message(e)}")]
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


def _build(data: Any, file: str, problems: list[PolicyProblem]) -> tuple[Any, list[PolicyProblem]]:
    from governed_db.policy import Policy
    from governed_db.policy.ratelimit import RateLimiter
    from governed_db.policy.rules import catalog

    b = Builder(file, problems)
    if not isinstance(data, dict):
        b.bad(data, None, "<file>", "a policy is a mapping with keys like rules:, overrides:, limits:")
        return None, problems
    sections: dict[str, Any] = {}
    for k in data:
        if k in _SECTIONS:
            try:
                sections[k] = _SECTIONS[k](data[k])
            except ValueError as e:
                b.bad(data, k, str(k), str(e))
        elif k not in _TOP:
            known = (*_TOP, *_SECTIONS)
            b.bad(data, k, str(k), f"unknown top-level key{suggest(k, known)}; valid: {', '.join(known)}")
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
            b.bad(rules, rid, path, f"unknown rule{suggest(rid, specs)}; see docs/reference/rules.md")
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
                opts[k] = parts.option(b, cfg, k, p, v, spec.options[k])
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
            elif isinstance(v, str) and v.lower() in ACTIONS:
                per_env[str(k).lower()] = Action(v.lower())
            else:
                valid = ", ".join(("action", *spec.options)) or "action"
                b.bad(cfg, k, p, f"unknown setting for rule {rid}{suggest(k, spec.options)}; valid: {valid}")
        if per_env:
            actions[rid] = per_env
        if opts:
            options[rid] = opts
    overrides = parts.overrides(b, data, specs)
    ident = data.get("identities") or {}
    if not isinstance(ident, dict):
        b.bad(data, "identities", "identities", "expected a mapping, e.g. {require_verified: [production]}")
    else:
        for k, v in ident.items():
            if k != "require_verified":
                b.bad(ident, k, f"identities.{k}", f"unknown setting{suggest(k, ['require_verified'])}")
            else:
                envs_required = tuple(e.lower() for e in b.strings(ident, k, "identities.require_verified", v))
                options.setdefault("identity-unverified", {})["environments"] = envs_required
    limits = parts.limits(b, data)
    storage = parts.limit_storage(b, data, limits)
    python_rules = parts.python_rules(b, data)
    approvals = parts.approvals(b, data)
    writes = parts.writes(b, data)
    if problems:
        return None, problems
    settings = PolicySettings(actions=actions, options=options, overrides=overrides, environments=environments,
                              limits=limits, writes=writes)  # fmt: skip
    name = str(data.get("name") or Path(file).stem)
    limiter = RateLimiter(limits, settings) if limits else None
    if storage is not None:
        from governed_db.policy.ratelimit_redis import SharedRateLimiter

        limiter = SharedRateLimiter(limits, settings, storage, scope=name)
    extra = {**sections, **({"approvals": approvals} if approvals is not None else {})}
    return Policy(name=name, settings=settings, limiter=limiter, source=file, extra_rules=python_rules,
                  extra=extra), problems  # fmt: skip


__all__ = [
    "PolicyFileError",
    "PolicyProblem",
    "check_policy_file",
    "policy_from_mapping",
    "read_policy_file",
    "register_section",
]
