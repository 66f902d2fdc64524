"""Who may call what: rules by path pattern and method, first match wins, default deny.

A policy is read from YAML (``policy:`` in the guard's file, or a file of its own)::

    anonymous: [/healthz, /readyz]          # shorthand for rules with ``allow: anonymous``
    default: deny                           # or ``authenticated``: any valid token
    rules:
      - path: /blobs/**
        methods: [GET, HEAD]
        any_of: [Blob.Read, Blob.Write]     # roles or scopes; ``role:X`` / ``scope:X`` to be exact
      - path: /blobs/**
        methods: [PUT, DELETE]
        all_of: [role:Blob.Write]
      - path: /whoami
        allow: authenticated
      - path: /invoke
        principals: [svc@proj.iam.gserviceaccount.com]   # sub, oid, appid/azp or email
      - path: /internal/**
        allow: nobody
      - path: /login
        allow: anonymous
        forward_authorization: true       # the upstream checks this path's credentials itself

Patterns: ``*`` is one path segment (or part of one), ``?`` one character within a segment,
``**`` any number of segments (``/api/**`` also matches ``/api``). ``GET`` rules also cover
``HEAD``. A rule with several requirements (``any_of``, ``all_of``, ``principals``) needs them all.
Paths match case-sensitively unless ``case_insensitive_paths: true`` (for upstreams that route
ignoring case, such as ASP.NET Core); a path the upstream could read differently is refused before
any rule is matched (``_request_safety.unsafe_path``).

On an anonymous path the caller's ``Authorization`` and ``X-Serverless-Authorization`` are removed
before the request goes on (nothing verified them), unless the rule says ``forward_authorization:
true``, which only an ``allow: anonymous`` rule may say.

:meth:`Policy.decide` answers 200 (allowed), 401 (a token is needed and none was verified) or 403
(the verified identity is not allowed), with a reason for the access log.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from keyless.guard._reader import PathKey, Reader, read_yaml
from keyless.guard._request_safety import unsafe_path

if TYPE_CHECKING:
    from keyless.guard._identity import Identity

__all__ = ["Decision", "Policy", "Rule", "load_policy", "unsafe_path"]

Allow = Literal["anonymous", "authenticated", "nobody"]
ALLOW_VALUES: tuple[Allow, ...] = ("anonymous", "authenticated", "nobody")
DEFAULTS = ("deny", "authenticated")
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"})
_RULE_KEYS = ("path", "paths", "methods", "allow", "any_of", "all_of", "principals", "forward_authorization")
_POLICY_KEYS = ("anonymous", "default", "rules", "case_insensitive_paths")


def compile_pattern(pattern: str, *, ignore_case: bool = False) -> re.Pattern[str]:
    """A glob over URL paths as a regular expression (see the module docs)."""
    while "/**/**" in pattern:  # several '**' segments in a row mean one
        pattern = pattern.replace("/**/**", "/**")
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("/**", i) and i + 3 == len(pattern):
            out.append("(?:/.*)?")
            i += 3
        elif pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out), re.DOTALL | (re.IGNORECASE if ignore_case else 0))


@dataclass(frozen=True, slots=True)
class Rule:
    """One policy rule; ``where`` names it in reasons (``rule 2 (guard.yaml:14)``)."""

    patterns: tuple[str, ...]
    methods: frozenset[str] | None = None  # None: every method
    allow: Allow | None = None
    any_of: tuple[str, ...] = ()
    all_of: tuple[str, ...] = ()
    principals: frozenset[str] = frozenset()
    where: str = "rule"
    forward_authorization: bool = False  # anonymous rules: pass the caller's Authorization on
    _regexes: tuple[re.Pattern[str], ...] = field(default=(), repr=False, compare=False)

    @classmethod
    def build(
        cls,
        patterns: Iterable[str],
        *,
        methods: Iterable[str] | None = None,
        allow: Allow | None = None,
        any_of: Iterable[str] = (),
        all_of: Iterable[str] = (),
        principals: Iterable[str] = (),
        where: str = "rule",
        forward_authorization: bool = False,
        ignore_case: bool = False,
    ) -> Rule:
        found = tuple(patterns)
        wanted = None if methods is None else frozenset(m.upper() for m in methods)
        if wanted is not None and "GET" in wanted:
            wanted |= {"HEAD"}
        return cls(
            found,
            wanted,
            allow,
            tuple(any_of),
            tuple(all_of),
            frozenset(principals),
            where,
            forward_authorization,
            tuple(compile_pattern(p, ignore_case=ignore_case) for p in found),
        )

    def ignoring_case(self) -> Rule:
        """This rule with its patterns matched regardless of case."""
        regexes = tuple(compile_pattern(p, ignore_case=True) for p in self.patterns)
        return replace(self, _regexes=regexes)

    def matches(self, method: str, path: str) -> bool:
        if self.methods is not None and method not in self.methods:
            return False
        return any(regex.fullmatch(path) for regex in self._regexes)

    @property
    def required(self) -> tuple[str, ...]:
        """The roles or scopes this rule asks for (the ``scope`` of a 403's challenge)."""
        return tuple(_bare(v) for v in (*self.all_of, *self.any_of))


@dataclass(frozen=True, slots=True)
class Decision:
    """The policy's answer: ``status`` is 200 (allowed), 401 or 403; ``reason`` is for the log."""

    allowed: bool
    status: int
    reason: str
    rule: Rule | None = None

    @property
    def required(self) -> tuple[str, ...]:
        return self.rule.required if self.rule is not None else ()


def _bare(value: str) -> str:
    return value.split(":", 1)[1] if value.startswith(("role:", "scope:")) else value


def _holds(identity: Identity, value: str) -> bool:
    if value.startswith("role:"):
        return value[5:] in identity.roles
    if value.startswith("scope:"):
        return value[6:] in identity.scopes
    return value in identity.roles or value in identity.scopes


def _held(identity: Identity) -> str:
    roles = ", ".join(identity.roles) or "none"
    scopes = " ".join(identity.scopes) or "none"
    return f"the token has roles [{roles}] and scopes [{scopes}]"


class Policy:
    """Ordered rules, the first matching one decides; no match: ``default`` (deny unless told)."""

    def __init__(
        self, rules: Iterable[Rule] = (), *, default: str = "deny", case_insensitive_paths: bool = False
    ) -> None:
        if default not in DEFAULTS:
            raise ValueError(f"default must be one of {DEFAULTS}")
        self.rules = tuple(r.ignoring_case() for r in rules) if case_insensitive_paths else tuple(rules)
        self.default = default
        self.case_insensitive_paths = case_insensitive_paths

    @classmethod
    def allow_authenticated(cls) -> Policy:
        """Every path needs a valid token, nothing more (the policy when none is configured)."""
        return cls((), default="authenticated")

    def match(self, method: str, path: str) -> Rule | None:
        method = method.upper()
        for rule in self.rules:
            if rule.matches(method, path):
                return rule
        return None

    def is_anonymous(self, method: str, path: str) -> bool:
        rule = self.match(method, path)
        return rule is not None and rule.allow == "anonymous"

    def decide(self, identity: Identity | None, method: str, path: str) -> Decision:
        """May ``identity`` (``None``: no verified token) call ``method path``?"""
        method = method.upper()
        return self.decide_rule(self.match(method, path), identity, method, path)

    def decide_rule(self, rule: Rule | None, identity: Identity | None, method: str, path: str) -> Decision:
        """:meth:`decide` with the rule already matched (``None``: no rule matched)."""
        if rule is None:
            return self._default(identity, method, path)
        if rule.allow == "anonymous":
            return Decision(True, 200, f"anonymous path ({rule.where})", rule)
        if identity is None:
            return Decision(False, 401, "a bearer token is required", rule)
        if rule.allow == "nobody":
            return Decision(False, 403, f"{method} {path} is denied to everyone ({rule.where})", rule)
        return _check_requirements(rule, identity, method, path)

    def _default(self, identity: Identity | None, method: str, path: str) -> Decision:
        if identity is None:
            return Decision(False, 401, "a bearer token is required")
        if self.default == "authenticated":
            return Decision(True, 200, "any valid token (default: authenticated)")
        return Decision(False, 403, f"no rule allows {method} {path} (default: deny)")


def _check_requirements(rule: Rule, identity: Identity, method: str, path: str) -> Decision:
    if rule.principals and not (identity.principals & rule.principals):
        return Decision(False, 403, f"{method} {path} is limited to listed principals ({rule.where})", rule)
    if rule.any_of and not any(_holds(identity, v) for v in rule.any_of):
        wanted = ", ".join(rule.any_of)
        reason = f"{method} {path} needs one of [{wanted}] ({rule.where}); {_held(identity)}"
        return Decision(False, 403, reason, rule)
    missing = [v for v in rule.all_of if not _holds(identity, v)]
    if missing:
        reason = f"{method} {path} needs all of [{', '.join(rule.all_of)}], missing [{', '.join(missing)}] "
        return Decision(False, 403, reason + f"({rule.where}); {_held(identity)}", rule)
    return Decision(True, 200, f"allowed by {rule.where}", rule)


# -- reading -------------------------------------------------------------------------------------------
def _read_rule(reader: Reader, raw: Any, path: PathKey, index: int) -> Rule | None:
    data = reader.mapping(raw, path, _RULE_KEYS)
    before = len(reader.problems)
    patterns = reader.text_list(data, path, "paths") + reader.text_list(data, path, "path")
    if not patterns and not {"path", "paths"} & data.keys():
        reader.problem(path, "a rule needs 'path' (or 'paths')")
    for number, pattern in enumerate(patterns):
        if not pattern.startswith("/"):
            reader.problem((*path, "path"), f"pattern {pattern!r} must start with '/' (pattern {number})")
    methods: tuple[str, ...] | None = reader.text_list(data, path, "methods") or None
    for method in methods or ():
        if method.upper() not in METHODS:
            reader.problem((*path, "methods"), f"unknown HTTP method {method!r}")
    allow = data.get("allow")
    if allow is not None and allow not in ALLOW_VALUES:
        reader.problem((*path, "allow"), f"must be one of {', '.join(ALLOW_VALUES)}; got {allow!r}")
    any_of = reader.text_list(data, path, "any_of")
    all_of = reader.text_list(data, path, "all_of")
    principals = reader.text_list(data, path, "principals")
    needs = any_of or all_of or principals
    if allow is not None and needs:
        reader.problem(path, "give either 'allow' or requirements (any_of, all_of, principals), not both")
    if allow is None and not needs and not {"any_of", "all_of", "principals"} & data.keys():
        reader.problem(path, "a rule needs 'allow' (anonymous, authenticated, nobody) or requirements")
    forward_authorization = reader.flag(data, path, "forward_authorization", False)
    if forward_authorization and allow != "anonymous":
        reader.problem(
            (*path, "forward_authorization"),
            "only an 'allow: anonymous' rule may forward the caller's Authorization "
            "(on other paths the guard strips the token it verified)",
        )
    for key, values in (("any_of", any_of), ("all_of", all_of), ("principals", principals)):
        if key in data and not values:
            reader.problem((*path, key), "must list at least one value")
    if len(reader.problems) > before:
        return None
    return Rule.build(
        patterns,
        methods=methods,
        allow=allow,
        any_of=any_of,
        all_of=all_of,
        principals=principals,
        where=f"rule {index} ({reader.where(path)})",
        forward_authorization=forward_authorization,
    )


def read_policy(reader: Reader, raw: Any, path: PathKey) -> Policy:
    """Read a policy mapping, reporting problems to ``reader`` (the caller raises them)."""
    data = reader.mapping(raw, path, _POLICY_KEYS)
    rules: list[Rule] = []
    anonymous = reader.text_list(data, path, "anonymous")
    for pattern in anonymous:
        if not pattern.startswith("/"):
            reader.problem((*path, "anonymous"), f"pattern {pattern!r} must start with '/'")
    if anonymous:
        where = f"anonymous list ({reader.where((*path, 'anonymous'))})"
        rules.append(Rule.build(anonymous, allow="anonymous", where=where))
    default = reader.choice(data, path, "default", DEFAULTS, "deny")
    raw_rules = data.get("rules")
    if raw_rules is not None and not isinstance(raw_rules, list):
        reader.problem((*path, "rules"), "expected a list of rules")
    elif raw_rules:
        for index, item in enumerate(raw_rules, start=1):
            rule = _read_rule(reader, item, (*path, "rules", index - 1), index)
            if rule is not None:
                rules.append(rule)
    case_insensitive = reader.flag(data, path, "case_insensitive_paths", False)
    return Policy(rules, default=default, case_insensitive_paths=case_insensitive)


def policy_from_mapping(data: Mapping[str, Any], *, source: str = "<policy>") -> Policy:
    """A policy from plain data; every problem at once in a ``ConfigurationError``."""
    reader = Reader(source)
    policy = read_policy(reader, dict(data), ())
    reader.raise_if_any()
    return policy


def load_policy(path: str | Path) -> Policy:
    """Read a policy file (YAML); every problem at once, each with ``file:line``."""
    file = Path(path)
    data, reader = read_yaml(file.read_text(encoding="utf-8"), str(file))
    root: PathKey = ()
    if isinstance(data, dict) and "policy" in data and len(data) == 1:
        data, root = data["policy"], ("policy",)
    policy = read_policy(reader, data, root)
    reader.raise_if_any()
    return policy
