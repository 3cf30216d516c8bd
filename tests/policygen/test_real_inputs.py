"""Inputs people really produce, tried as a new user would (issue 12's table, one test a row), and
names from captures as untrusted input."""

import json

import pytest

from netguard.cli import main as netguard

POD = "apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: shop}\n"
SERVICE = "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: shop}\n"
WRONG_SHAPES = [
    ("containers a string", POD + 'spec: {containers: "x"}\n',
     'Pod shop/web: spec.containers: Invalid value: "x": must be of type array'),
    ("labels a list", "kind: Pod\nmetadata: {name: web, namespace: shop, labels: [app, web]}\n",
     'Pod shop/web: metadata.labels: Invalid value: ["app", "web"]: must be of type object'),
    ("ports a string", POD + "spec: {containers: [{name: c, ports: '8080'}]}\n",
     'Pod shop/web: spec.containers[0].ports: Invalid value: "8080": must be of type array'),
    ("service selector a string", SERVICE + "spec: {selector: app=x}\n",
     'Service shop/web: spec.selector: Invalid value: "app=x": must be of type object'),
    ("containerPort a word", POD + "spec: {containers: [{name: c, ports: [{containerPort: abc}]}]}\n",
     'Pod shop/web: spec.containers[0].ports[0].containerPort: Invalid value: "abc": must be of type integer'),
    ("podIP not an IP", POD + "status: {podIP: not-an-ip}\n",
     'Pod shop/web: status.podIP: Invalid value: "not-an-ip": must be a valid IP address'),
    ("label value the API server refuses", "kind: Pod\nmetadata: {name: web, namespace: shop, labels: {app: '<img src=x>'}}\n",
     "Pod shop/web: metadata.labels[app]: Invalid value: \"<img src=x>\": invalid label value"),
    ("namespace not a DNS label", "kind: Pod\nmetadata: {name: web, namespace: ../etc}\n",
     'Pod ../etc/web: metadata.namespace: Invalid value: "../etc": a lowercase RFC 1123 label'),
]
NATIVE = {"time": 1.0, "src_ip": "10.244.1.10", "src_port": 40000, "dst_ip": "10.244.1.11", "dst_port": 8080, "protocol": "TCP"}
INVENTORY = """
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Pod, metadata: {name: a, namespace: shop, labels: {app: a}}, status: {podIP: 10.244.1.10}}
- apiVersion: v1
  kind: Pod
  metadata: {name: b, namespace: shop, labels: {app: b}}
  spec: {containers: [{name: c, ports: [{containerPort: 8080}]}]}
  status: {podIP: 10.244.1.11}
"""


def _hubble(src_ns="shop", src_pod="a-7d4b9c6f5d-x1x2x", labels=("k8s:app=a",)):
    return {"flow": {"time": "2026-01-01T00:00:00Z", "verdict": "FORWARDED", "is_reply": False,
                     "IP": {"source": "10.244.1.10", "destination": "10.244.1.11"},
                     "l4": {"TCP": {"source_port": 40000, "destination_port": 8080}},
                     "source": {"namespace": src_ns, "pod_name": src_pod, "labels": list(labels)},
                     "destination": {"namespace": "shop", "pod_name": "b-7d4b9c6f5d-x1x2y", "labels": ["k8s:app=b"]}}}


@pytest.fixture
def files(tmp_path):
    inv = tmp_path / "cluster.yaml"
    inv.write_text(INVENTORY)
    flows = tmp_path / "flows.jsonl"
    flows.write_text(json.dumps(NATIVE) + "\n")
    return inv, flows


def _run(capsys, *args):
    rc = netguard([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


def _one_error_line(err):
    lines = [line for line in err.splitlines() if not line.startswith(("inventory:", "flows:", "  "))]
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize(("text", "message"), [c[1:] for c in WRONG_SHAPES], ids=[c[0] for c in WRONG_SHAPES])
def test_inventory_objects_of_the_wrong_shape_are_one_line_naming_file_object_and_field(tmp_path, files, capsys, text, message):
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    out = tmp_path / "out"
    rc, _, err = _run(capsys, "policy", "generate", "--inventory", bad, "--flows", files[1], "-o", out)
    assert rc == 2
    line = _one_error_line(err)
    assert f"{bad}: {message}" in line
    assert not out.exists()


def test_an_empty_flows_file_is_an_error_unless_allowed(tmp_path, files, capsys):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    rc, _, err = _run(capsys, "policy", "generate", "--inventory", files[0], "--flows", empty, "-o", tmp_path / "out")
    assert rc == 2 and f"{empty}: no flow records: the file is empty (--allow-empty" in _one_error_line(err)
    assert not (tmp_path / "out").exists()
    rc, _, _ = _run(capsys, "policy", "generate", "--inventory", files[0], "--flows", empty, "-o", tmp_path / "out",
                    "--allow-empty")
    assert rc == 0 and (tmp_path / "out" / "shop" / "a.yaml").exists()


def test_flows_whose_every_line_was_skipped_are_empty_too(tmp_path, files, capsys):
    cut = tmp_path / "cut.jsonl"
    cut.write_text(json.dumps(NATIVE)[:30] + "\n")
    rc, _, err = _run(capsys, "policy", "generate", "--inventory", files[0], "--flows", cut, "-o", tmp_path / "out",
                      "--skip-invalid")
    assert rc == 2 and "every one of the 1 lines was invalid and skipped" in err


def test_a_flows_file_cut_mid_line_stops_by_default_and_is_skipped_counted_and_named_on_request(tmp_path, files, capsys):
    cut = tmp_path / "cut.jsonl"
    good = json.dumps(NATIVE)
    cut.write_text("\n".join([good, "not json", good, good[:25]]))
    rc, _, err = _run(capsys, "policy", "generate", "--inventory", files[0], "--flows", cut, "-o", tmp_path / "out")
    assert rc == 2 and f"{cut}: line 2: not JSON" in _one_error_line(err)
    rc, _, err = _run(capsys, "policy", "generate", "--inventory", files[0], "--flows", cut, "-o", tmp_path / "out",
                      "--skip-invalid")
    assert rc == 0
    assert "skipped 2 invalid lines, the first:" in err
    assert f"{cut}: line 2: not JSON" in err and f"{cut}: line 4: truncated JSON" in err


def test_an_empty_inventory_is_an_error_unless_the_flows_carry_identity(tmp_path, files, capsys):
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    rc, _, err = _run(capsys, "policy", "generate", "--inventory", empty, "--flows", files[1], "-o", tmp_path / "out")
    assert rc == 2 and "the inventory holds no workload, pod or Service" in _one_error_line(err)
    hubble = tmp_path / "hubble.jsonl"
    hubble.write_text(json.dumps(_hubble()) + "\n")
    rc, _, _ = _run(capsys, "policy", "generate", "--inventory", empty, "--flows", hubble, "-o", tmp_path / "out")
    assert rc == 0 and (tmp_path / "out" / "shop" / "b.yaml").exists()


def test_generate_for_one_namespace_touches_only_its_files_and_lists_every_removal(tmp_path, files, capsys):
    out = tmp_path / "out"
    for ns in ("kube-system", "shop"):
        (out / ns).mkdir(parents=True)
        (out / ns / "gone.yaml").write_text("# Generated by netguard for Deployment x/gone\n")
    (out / "shop" / "mine.yaml").write_text("# written by hand\n")
    inventory = tmp_path / "ks.yaml"
    inventory.write_text(INVENTORY.replace("shop", "kube-system"))
    rc, _, err = _run(capsys, "policy", "generate", "--inventory", inventory, "--flows", files[1], "-o", out,
                      "-n", "kube-system")
    assert rc == 0
    assert (out / "shop" / "gone.yaml").exists() and (out / "shop" / "mine.yaml").exists()  # out of scope: untouched
    assert not (out / "kube-system" / "gone.yaml").exists()
    assert (out / "kube-system" / "a.yaml").exists()
    removals = [line for line in err.splitlines() if line.startswith("removed ")]
    assert removals == [f"removed {(out / 'kube-system' / 'gone.yaml').resolve()} "
                        "(an earlier netguard policy of a workload no longer observed)"]


def test_verify_with_an_empty_policies_file_says_no_policy_was_given(tmp_path, files, capsys):
    empty = tmp_path / "policies.yaml"
    empty.write_text("")
    rc, out, err = _run(capsys, "policy", "verify", "--inventory", files[0], "--flows", files[1], "--policies", empty)
    assert rc == 2 and "no NetworkPolicy in the files given: nothing to verify" in _one_error_line(err)
    assert "allowed" not in out


def test_controller_with_a_database_in_a_missing_folder_is_one_line(capsys):
    rc, _, err = _run(capsys, "controller", "--db", "/nonexistent/x.db", "--no-auth", "--kube", "off")
    assert rc == 2
    errors = [line for line in err.splitlines() if "error" in line and not line.startswith("{")]
    assert errors == ["netguard controller: error: /nonexistent/x.db: --db: cannot open the database: unable to open database file"]


# --- names from captures are untrusted ---------------------------------------------------------------

UNTRUSTED = [
    ("namespace escaping the folder", {"src_ns": "../../../tmp/evil"}, "source.namespace: Invalid value"),
    ("pod name with a slash", {"src_pod": "a/../../x"}, "source.pod_name: Invalid value"),
    ("label value with markup", {"labels": ("k8s:app=<img src=x onerror=alert(1)>",)}, "source.labels: invalid label value"),
    ("label key with spaces", {"labels": ("k8s:my app=a",)}, "source.labels: invalid label key"),
    ("namespace too long", {"src_ns": "a" * 64}, "must be no more than 63 characters"),
]


@pytest.mark.parametrize(("bad", "message"), [c[1:] for c in UNTRUSTED], ids=[c[0] for c in UNTRUSTED])
def test_names_from_captures_are_checked_as_the_api_server_would(tmp_path, capsys, bad, message):
    flows = tmp_path / "hubble.jsonl"
    flows.write_text(json.dumps(_hubble()) + "\n" + json.dumps(_hubble(**bad)) + "\n")
    out = tmp_path / "out"
    rc, _, err = _run(capsys, "policy", "generate", "--flows", flows, "-o", out)
    assert rc == 2 and f"{flows}: line 2: " in _one_error_line(err) and message in err
    assert not out.exists() and not list(tmp_path.parent.glob("**/evil"))
    rc, _, err = _run(capsys, "policy", "generate", "--flows", flows, "-o", out, "--skip-invalid")
    assert rc == 0 and "skipped 1 invalid line" in err
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.yaml")) == ["shop/a.yaml", "shop/b.yaml"]


def test_no_file_is_written_outside_the_output_folder(tmp_path):
    from netguard.errors import InputError
    from netguard.model import Workload
    from netguard.netpol import NetworkPolicy
    from netguard.selectors import Selector
    from policygen.render import write_policies
    from policygen.synth import GeneratedPolicy

    policy = NetworkPolicy(namespace="..", name="evil", pod_selector=Selector())
    evil = GeneratedPolicy(Workload("..", "Deployment", "evil"), policy, (), ())
    with pytest.raises(InputError, match="resolves outside the output folder"):
        write_policies([evil], tmp_path / "out", render=lambda g: "x")
    assert not (tmp_path / "evil.yaml").exists()
