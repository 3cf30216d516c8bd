"""Built-in rule files (YAML data, loaded by waf._rules.builtin_rules)."""
