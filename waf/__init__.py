"""netguard WAF: a pure detection engine (`inspect(request) -> Verdict`) and an inline ASGI sidecar.

    from waf import Request, inspect
    verdict = inspect(Request.make("GET", "/search?q=1' OR 1=1--"))
    verdict.blocked, verdict.score, verdict.categories

The package stands alone: it imports nothing from netguard's other packages.
"""

from waf._body import BodyBudget, BodyKind, Refusal
from waf._engine import Engine, EngineConfig, Exclusion, Match, OverBudget, Verdict, inspect
from waf._request import Request
from waf._rules import Rule, RuleError, builtin_rules

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
