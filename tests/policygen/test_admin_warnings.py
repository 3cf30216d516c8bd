"""generate and verify under the cluster's admin tiers: an observed flow an AdminNetworkPolicy denies, and a
generated rule an admin rule always decides first, are said (stderr), never silently wrong."""

from __future__ import annotations

from pathlib import Path

from netguard.cli import main

DATA = Path(__file__).parent / "data"
ADMIN = """
apiVersion: policy.networking.k8s.io/v1alpha1
kind: AdminNetworkPolicy
metadata: {name: no-details}
spec:
  priority: 5
  subject: {pods: {namespaceSelector: {}, podSelector: {matchLabels: {app: details}}}}
  ingress:
  - name: block-all
    action: Deny
    from: [{namespaces: {}}]
---
apiVersion: policy.networking.k8s.io/v1alpha1
kind: AdminNetworkPolicy
metadata: {name: ratings-open}
spec:
  priority: 6
  subject: {pods: {namespaceSelector: {}, podSelector: {matchLabels: {app: ratings}}}}
  ingress:
  - {name: allow-all, action: Allow, from: [{namespaces: {}}]}
"""


def test_generate_and_verify_say_what_admin_policies_override(tmp_path, capsys):
    admin = tmp_path / "admin.yaml"
    admin.write_text(ADMIN)
    inventory = ["--inventory", str(DATA / "bookinfo-cluster.yaml"), str(admin)]
    flows = ["--flows", str(DATA / "bookinfo-flows.jsonl")]
    assert main(["policy", "generate", *inventory, *flows, "-o", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    assert "productpage-v1 -> default/details-v1 9080/TCP is denied by AdminNetworkPolicy no-details (priority 5)" in err
    assert ("default/netguard-details-v1 ingress[0] can never take effect: AdminNetworkPolicy no-details (priority 5) "
            "ingress[0] 'block-all' (Deny)") in err
    assert "default/netguard-ratings-v1 ingress[0] can never take effect: AdminNetworkPolicy ratings-open" in err
    status = main(["policy", "verify", *inventory, *flows, "--policies", str(tmp_path / "out"), "--no-least-privilege"])
    captured = capsys.readouterr()
    assert status == 1
    assert "denied by AdminNetworkPolicy no-details (priority 5) ingress[0] 'block-all' (Deny)" in captured.out
    assert "no NetworkPolicy can allow it" in captured.err


def test_least_privilege_counts_what_an_admin_allow_opens(tmp_path, capsys):
    admin = tmp_path / "admin.yaml"
    admin.write_text(ADMIN)
    flows = ["--flows", str(DATA / "bookinfo-flows.jsonl")]
    assert main(["policy", "generate", "--inventory", str(DATA / "bookinfo-cluster.yaml"), *flows,
                 "-o", str(tmp_path / "out"), "-q"]) == 0
    without = ["policy", "verify", "--inventory", str(DATA / "bookinfo-cluster.yaml"), *flows, "--policies", str(tmp_path / "out")]
    assert main(without) == 0
    assert "EXTRA default/details-v1 -> default/ratings-v1" not in capsys.readouterr().out
    with_admin = ["policy", "verify", "--inventory", str(DATA / "bookinfo-cluster.yaml"), str(admin), *flows,
                  "--policies", str(tmp_path / "out")]
    main(with_admin)  # details is denied by the other ANP: exit 1
    out = capsys.readouterr().out
    assert "EXTRA default/details-v1 -> default/ratings-v1 9080/TCP" not in out  # details' own egress is isolated
    assert "EXTRA kube-system/coredns -> default/ratings-v1 9080/TCP" in out  # coredns' egress is open: the ANP lets it in
