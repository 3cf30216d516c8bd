"""Every built-in rule carries its own test cases (like CRS's per-rule regression tests)."""

import pytest

from waf._engine import Engine, EngineConfig
from waf._rules import builtin_rules

RULES = [r for r in builtin_rules() if r.pattern is not None]


@pytest.mark.parametrize("rule", RULES, ids=lambda r: str(r.id))
def test_rule_matches_its_own_examples(rule):
    engine = Engine(EngineConfig(paranoia=4), rules=[rule])
    kind = sorted(rule.targets)[0] if "arg" not in rule.targets else "arg"
    for text in rule.match:
        assert rule.id in engine.scan_value(text, kind), f"rule {rule.id} should match {text!r}"
    for text in rule.nomatch:
        assert rule.id not in engine.scan_value(text, kind), f"rule {rule.id} should not match {text!r}"


def test_rule_ids_are_unique_and_every_rule_has_an_example():
    rules = builtin_rules()
    assert len({r.id for r in rules}) == len(rules)
    missing = [r.id for r in rules if r.pattern is not None and not r.match]
    assert missing == []
