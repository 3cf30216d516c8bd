"""The YAML emitter: whatever it writes, a YAML parser reads back as the same data."""

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from policygen.render import dump_yaml

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**40), 2**40),
    st.text(max_size=12),
    st.sampled_from(["yes", "no", "on", "off", "null", "~", "1.0", "0x1F", "1e3", "12:30", "2026-01-01", "-", "- a", "a: b",
                     "0.", "1.", "-.5", "#x", "'q'", '"d"', "*a", "&a", "!t", "%p", "@x", "`b", "|", ">", "[", "{", "a #b", " lead", "trail ",
                     "10.244.0.0/16", "app.kubernetes.io/name", ".inf", "+1", "0o17", "1_000"]),
)
keys = st.one_of(st.text(min_size=1, max_size=10), st.sampled_from(["yes", "null", "1", "on", "a: b", "k8s-app"]))
data = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4), max_leaves=25)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(keys, data, min_size=1, max_size=5))
def test_dump_yaml_round_trips(value):
    assert yaml.safe_load(dump_yaml(value)) == value
