"""`netguard inject` on files: golden output, other objects byte for byte, validation, clean errors."""

from __future__ import annotations

import subprocess
import sys

import yaml

from tests.injection.conftest import DATA, check_golden, validate_all_versions
from waf.injection.cli import inject_text, main
from waf.injection.documents import split
from waf.injection.mutation import SIDECAR, Result


def _objects(text):
    return [doc.obj for doc in split(text)]


def test_bookinfo_with_productpage_labelled_matches_the_golden_file():
    source = (DATA / "bookinfo-productpage-waf.yaml").read_text()
    out, outcomes = inject_text(source)
    assert [(o.what, o.result) for o in outcomes] == [("Deployment productpage-v1", Result.INJECTED)]
    check_golden("bookinfo-productpage-waf.injected.yaml", out)


def test_bookinfo_injected_validates_and_only_productpage_changed():
    source = (DATA / "bookinfo-productpage-waf.yaml").read_text()
    out, _ = inject_text(source)
    before, after = split(source), split(out)
    assert [d.obj.get("kind") for d in before] == [d.obj.get("kind") for d in after]  # order kept
    changed = [b.obj["metadata"]["name"] for b, a in zip(before, after, strict=True) if b.text != a.text]
    assert changed == ["productpage-v1"]
    for doc in after:
        validate_all_versions(doc.obj)
    page = after[-1].obj["spec"]["template"]["spec"]
    assert [c["name"] for c in page["containers"]] == ["productpage", SIDECAR]
    assert page["initContainers"][0]["name"] == "netguard-waf-init"
    assert out.startswith("# Copyright Istio Authors")  # comments of untouched documents kept


def test_the_labelled_fixture_differs_from_the_sample_only_by_the_opt_in():
    pristine = (DATA / "bookinfo.yaml").read_text().splitlines()
    labelled = (DATA / "bookinfo-productpage-waf.yaml").read_text().splitlines()
    added = [line for line in labelled if line not in pristine]
    assert [a.strip() for a in added] == ["netguard.io/waf-redirect: iptables", "netguard.io/waf: enabled"]
    assert len(labelled) == len(pristine) + 2


def test_bookinfo_without_labels_comes_back_byte_for_byte():
    source = (DATA / "bookinfo.yaml").read_text()
    assert inject_text(source) == (source, [])


def test_bookinfo_labelled_without_iptables_is_left_alone_and_says_why():
    source = (
        (DATA / "bookinfo-productpage-waf.yaml")
        .read_text()
        .replace("        netguard.io/waf-redirect: iptables\n", "")
    )
    out, outcomes = inject_text(source)
    assert out == source
    assert [o.result for o in outcomes] == [Result.LEFT_ALONE]
    assert outcomes[0].warnings[0].startswith("Deployment productpage-v1: port 9080 of container productpage has no name")


def test_frontend_takeover_through_the_named_service_port_matches_the_golden_file():
    out, outcomes = inject_text((DATA / "frontend.yaml").read_text())
    assert [o.result for o in outcomes] == [Result.INJECTED]
    check_golden("frontend.injected.yaml", out)
    objs = _objects(out)
    for obj in objs:
        validate_all_versions(obj)
    spec = objs[2]["spec"]["template"]["spec"]
    sidecar = spec["containers"][1]
    assert sidecar["ports"][0] == {"name": "web", "containerPort": 8080, "protocol": "TCP"}
    assert spec["containers"][0]["env"] == [{"name": "PORT", "value": "15081"}]
    assert 'greeting: "hello"   # untouched, quotes and comment kept' in out


def test_injecting_the_output_again_changes_nothing():
    once, _ = inject_text((DATA / "frontend.yaml").read_text())
    again, outcomes = inject_text(once)
    assert again == once and [o.result for o in outcomes] == [Result.ALREADY_INJECTED]


def test_a_list_from_kubectl_get_is_injected_item_by_item():
    objs = _objects((DATA / "frontend.yaml").read_text())
    text = yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": objs[1:3]}, sort_keys=False)
    out, outcomes = inject_text(text)
    items = yaml.safe_load(out)["items"]
    assert [o.result for o in outcomes] == [Result.INJECTED] and items[0] == objs[1]
    assert items[1]["spec"]["template"]["spec"]["containers"][1]["name"] == SIDECAR


def test_cli_writes_the_output_file_and_warns_on_stderr(tmp_path, capsys):
    source = DATA / "bookinfo-productpage-waf.yaml"
    text = source.read_text().replace("        netguard.io/waf-redirect: iptables\n", "")
    (tmp_path / "in.yaml").write_text(text)
    assert main(["-f", str(tmp_path / "in.yaml"), "-o", str(tmp_path / "out.yaml")]) == 0
    assert (tmp_path / "out.yaml").read_text() == text
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"netguard inject: {tmp_path / 'in.yaml'}: warning: Deployment productpage-v1: port 9080 of container productpage"
        " has no name and no env var of the container carries 9080, so nothing would tell the app to move (set"
        " netguard.io/waf-app-port-env to the variable it reads its port from, name the port, or set"
        " netguard.io/waf-redirect: iptables); left alone",
        f"netguard inject: {tmp_path / 'in.yaml'}: 1 opted-in workload: 0 injected, 0 already injected, 1 left alone",
    ]


def test_strict_exits_1_and_writes_nothing_when_an_opted_in_workload_is_left_alone(tmp_path, capsys):
    text = (DATA / "bookinfo-productpage-waf.yaml").read_text().replace("        netguard.io/waf-redirect: iptables\n", "")
    (tmp_path / "in.yaml").write_text(text)
    out = tmp_path / "out.yaml"
    assert main(["--strict", "-f", str(tmp_path / "in.yaml"), "-o", str(out)]) == 1
    assert not out.exists()
    assert capsys.readouterr().err.splitlines()[-1] == (
        "netguard inject: --strict: 1 opted-in workload(s) left alone; nothing written"
    )
    assert main(["--strict", "-q", "-f", str(DATA / "frontend.yaml"), "-o", str(out)]) == 0
    assert capsys.readouterr().err.splitlines() == [
        f"netguard inject: {DATA / 'frontend.yaml'}: 1 opted-in workload: 1 injected, 0 already injected, 0 left alone"
    ]


def test_bad_yaml_is_one_line_naming_file_and_line_exit_2_and_nothing_written(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: Service\n---\nkind: Deployment\nspec: [unclosed\n")
    out = tmp_path / "out.yaml"
    assert main(["-f", str(bad), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"netguard inject: error: {bad}: line ")
    assert not out.exists() and list(tmp_path.iterdir()) == [bad]


def test_a_missing_file_is_exit_2(tmp_path, capsys):
    assert main(["-f", str(tmp_path / "nope.yaml")]) == 2
    assert "nope.yaml: No such file or directory" in capsys.readouterr().err


def test_the_command_reads_stdin_and_has_help_with_an_example():
    source = (DATA / "frontend.yaml").read_text()
    run = subprocess.run(
        [sys.executable, "-m", "netguard", "inject", "-f", "-"],
        input=source,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0 and SIDECAR in run.stdout
    assert run.stderr.splitlines() == [
        "netguard inject: <stdin>: Deployment shop/storefront: injected (takeover of port web: the WAF listens on 8080,"
        " the app moves to 15081 (PORT=15081))",
        "netguard inject: <stdin>: 1 opted-in workload: 1 injected, 0 already injected, 0 left alone",
    ]
    helptext = subprocess.run(
        [sys.executable, "-m", "netguard", "inject", "--help"], capture_output=True, text=True, timeout=60
    ).stdout
    assert "netguard inject -f app.yaml -o app.injected.yaml" in helptext


def test_bank_of_anthos_frontend_with_its_unnamed_port_is_taken_over_and_matches_the_golden_file():
    source = (DATA / "bank-of-anthos" / "frontend.yaml").read_text()
    out, outcomes = inject_text(source)
    assert [(o.what, o.result) for o in outcomes] == [("Deployment frontend", Result.INJECTED)]
    check_golden("bank-of-anthos-frontend.injected.yaml", out)
    service, deployment = _objects(out)
    assert service == _objects(source)[0] and service["spec"]["ports"][0]["targetPort"] == 8080
    for obj in (service, deployment):
        validate_all_versions(obj)
    front, waf = deployment["spec"]["template"]["spec"]["containers"]
    assert waf["name"] == SIDECAR and waf["ports"][0] == {"containerPort": 8080, "protocol": "TCP"}
    assert front["ports"] == [{"containerPort": 15081, "protocol": "TCP"}]  # declared where it moved
    assert {"name": "PORT", "value": "15081"} in front["env"]
    assert front["readinessProbe"]["httpGet"]["port"] == front["livenessProbe"]["httpGet"]["port"] == 15081
