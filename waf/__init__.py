"""netguard WAF: a pure detection engine (`inspect(request) -> Verdict`) and an inline ASGI sidecar.

    from waf import Request, inspect
    verdict = inspect(Request.make("GET", "/search?q=1' OR 1=1--"))
    verdict.blocked, verdict.score, verdict.categories

The package stands alone: it imports nothing from netguard's other packages.
"""

from waf import _native

_native.use_sources_when_stale()  # before any compiled module is imported (see waf/_native.py)

from waf._body import BodyBudget, BodyKind, Refusal  # noqa: E402
from waf._engine import Engine, EngineConfig, Exclusion, Match, OverBudget, Verdict, inspect  # noqa: E402
from waf._request import Request  # noqa: E402
from waf._rules import Rule, RuleError, builtin_rules  # noqa: E402

__all__ = [
    "BodyBudget",
    "BodyKind",
    "OverBudget",
    "Refusal",
    "Engine",
    "EngineConfig",
    "Exclusion",
    "Match",
    "Request",
    "Rule",
    "RuleError",
    "Verdict",
    "builtin_rules",
    "inspect",
]
