"""Bad input: one clear line naming the file, line or object; exit status 2; nothing half-written."""

import subprocess
import sys

import pytest


def run(*args):
    return subprocess.run([sys.executable, "-m", "netguard", *args], capture_output=True, text=True, timeout=60)


@pytest.fixture
def inputs(tmp_path, bookinfo_data):
    good_flows = (bookinfo_data / "bookinfo-flows.jsonl").read_text()
    files = {
        "cluster": bookinfo_data / "bookinfo-cluster.yaml",
        "flows": bookinfo_data / "bookinfo-flows.jsonl",
        "bad_yaml": tmp_path / "bad.yaml",
        "not_json": tmp_path / "notjson.jsonl",
        "truncated": tmp_path / "truncated.jsonl",
        "bad_proto": tmp_path / "proto.jsonl",
        "bad_policy": tmp_path / "policies" / "bad.yaml",
    }
    files["bad_yaml"].write_text("kind: Pod\nmetadata:\n  name: [unclosed\n")
    files["not_json"].write_text(good_flows.splitlines()[0] + "\nhello world\n")
    files["truncated"].write_text(good_flows + good_flows.splitlines()[1][:40])
    files["bad_proto"].write_text(good_flows.splitlines()[0] + '\n{"src_ip": "10.0.0.1", "dst_ip": "10.0.0.2", "dst_port": 1, "protocol": "GRE"}\n')
    files["bad_policy"].parent.mkdir()
    files["bad_policy"].write_text(
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: broken, namespace: default}\n"
        "spec:\n  podSelector:\n    matchExpressions: [{key: app, operator: Within, values: [a]}]\n")
    return files


CASES = [
    ("missing file", ["--inventory", "{tmp}/nope.yaml", "--flows", "{flows}"], "{tmp}/nope.yaml: no such file or directory"),
    ("invalid YAML", ["--inventory", "{bad_yaml}", "--flows", "{flows}"], "{bad_yaml}: line 4: invalid YAML"),
    ("non-JSON line", ["--inventory", "{cluster}", "--flows", "{not_json}"], "{not_json}: line 2: not JSON"),
    ("truncated line", ["--inventory", "{cluster}", "--flows", "{truncated}"], "{truncated}: line 156: truncated JSON"),
    ("unknown protocol", ["--inventory", "{cluster}", "--flows", "{bad_proto}"], "{bad_proto}: line 2: unknown protocol 'GRE'"),
    ("bad selector", ["--inventory", "{cluster}", "{bad_policy}", "--flows", "{flows}"],
     "{bad_policy}: NetworkPolicy default/broken: spec.podSelector: invalid operator 'Within'"),
]


@pytest.mark.parametrize(("args", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_generate_rejects_bad_input_cleanly(inputs, tmp_path, args, message):
    subst = {k: str(v) for k, v in inputs.items()} | {"tmp": str(tmp_path)}
    out = tmp_path / "out"
    result = run("policy", "generate", *[a.format(**subst) for a in args], "-o", str(out))
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert len(errors) == 1, result.stderr  # progress lines may precede it; the error is one line
    assert errors[0].startswith("netguard policy: error: ") and result.stderr.strip().endswith(errors[0])
    assert message.format(**subst) in errors[0]
    assert not out.exists()  # nothing half-written


def test_verify_rejects_a_policy_with_a_bad_selector(inputs):
    result = run("policy", "verify", "--inventory", str(inputs["cluster"]), "--flows", str(inputs["flows"]),
                 "--policies", str(inputs["bad_policy"].parent))
    assert result.returncode == 2
    assert "NetworkPolicy default/broken: spec.podSelector: invalid operator 'Within'" in result.stderr


def test_an_existing_output_folder_is_left_as_it_was_on_error(inputs, tmp_path):
    out = tmp_path / "out"
    (out / "default").mkdir(parents=True)
    keep = out / "default" / "mine.yaml"
    keep.write_text("kind: ConfigMap\n")
    result = run("policy", "generate", "--inventory", str(inputs["cluster"]), "--flows", str(inputs["not_json"]), "-o", str(out))
    assert result.returncode == 2
    assert [p.name for p in out.rglob("*") if p.is_file()] == ["mine.yaml"]


def test_help_reads_well():
    result = run("policy", "generate", "--help")
    assert result.returncode == 0
    assert "examples:" in result.stdout and "--flows" in result.stdout and "-o DIR" in result.stdout
