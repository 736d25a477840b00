"""`clustermesh plan` end to end: exit codes, files written, secrets kept out of what it writes."""

from __future__ import annotations

import base64
import gc
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from hypothesis import example, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from clustermesh.planner import report
from clustermesh.planner.cli import app
from clustermesh.planner.report import plan_document
from clustermesh.planner.runner import fewer_collections
from tests.conftest import PROJECT_DIR, cluster, plan_raw, raw_config, three_clusters, write_stack_file

CLI = Path(sys.executable).parent / "clustermesh"
runner = CliRunner()


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """The installed console script, in a fresh process, as a user runs it."""
    return subprocess.run([str(CLI), *args], cwd=PROJECT_DIR, capture_output=True, text=True, timeout=120, check=False)


def test_dev_stack_plans_three_clusters_and_writes_plan_and_values(tmp_path: Path) -> None:
    result = run_cli("plan", "--stack", "dev", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    for name in ("k3scl1", "k3scl2", "k3scl3"):
        assert name in result.stdout
    assert "kubernetes:helm.sh/v3:Release" in result.stdout

    plan = json.loads((tmp_path / "plan.json").read_text())
    assert (plan["project"], plan["stack"]) == ("clustermesh", "dev")
    for resource in plan["resources"]:
        assert set(resource) >= {"urn", "type", "name", "parent", "provider", "dependencies", "inputs"}
    releases = {r["name"]: r for r in plan["resources"] if r["type"] == "kubernetes:helm.sh/v3:Release"}
    assert sorted(releases) == ["k3scl1-cilium", "k3scl2-cilium", "k3scl3-cilium"]
    assert sorted(p.name for p in (tmp_path / "clusters").iterdir()) == ["k3scl1", "k3scl2", "k3scl3"]
    for name in ("k3scl1", "k3scl2", "k3scl3"):
        values = yaml.safe_load((tmp_path / "clusters" / name / "cilium-values.yaml").read_text())
        assert values == releases[f"{name}-cilium"]["inputs"]["values"]
        assert values["cluster"]["name"] == name
    assert plan["outputs"]["kubeconfigs"] == {"k3scl1": "[secret]", "k3scl2": "[secret]", "k3scl3": "[secret]"}


def test_plan_is_deterministic(tmp_path: Path) -> None:
    """Two plans of the same stack must be byte-identical, or diffing plans in review shows noise."""
    for out in ("a", "b"):
        assert (
            runner.invoke(
                app, ["plan", "--stack", "dev", "--out", str(tmp_path / out), "--project-dir", str(PROJECT_DIR)]
            ).exit_code
            == 0
        )
    assert (tmp_path / "a" / "plan.json").read_bytes() == (tmp_path / "b" / "plan.json").read_bytes()


def _with(index: int, **changes: Any) -> list[dict[str, Any]]:
    clusters = three_clusters()
    clusters[index] = {**clusters[index], **changes}
    return clusters


def _without(index: int, key: str) -> list[dict[str, Any]]:
    clusters = three_clusters()
    del clusters[index][key]
    return clusters


MALFORMED: dict[str, tuple[list[dict[str, Any]], dict[str, Any], str]] = {
    "duplicate id": (_with(2, id=1), {}, "clusters[2].id: 1 is already used by clusters[0]"),
    "duplicate name": (_with(1, name="alpha"), {}, "clusters[1].name: 'alpha' is already used by clusters[0]"),
    "overlapping pod cidrs": (
        _with(2, podCidrs=["10.11.0.0/17"]),
        {},
        "clusters[2].podCidrs[0]: 10.11.0.0/17 overlaps clusters[0].podCidrs[0] 10.11.0.0/16",
    ),
    "overlapping node cidrs": (
        _with(1, nodeCidr="172.17.1.128/25"),
        {},
        "clusters[1].nodeCidr: 172.17.1.128/25 overlaps clusters[0].nodeCidr 172.17.1.0/24",
    ),
    "bad name": (_with(0, name="Alpha_1"), {}, "clusters[0].name: 'Alpha_1' must consist of lower case"),
    "name too long": (_with(0, name="a" * 33), {}, "clusters[0].name: '" + "a" * 33 + "' is longer than 32 characters"),
    "reserved name": (_with(0, name="default"), {}, "clusters[0].name: 'default' is reserved"),
    "id out of range": (_with(1, id=256), {}, "clusters[1].id: 256 is out of range 1..255"),
    "id zero": (_with(1, id=0), {}, "clusters[1].id: 0 is reserved"),
    "unknown cluster key": (
        _with(0, podCIDRs=["10.1.0.0/16"]),
        {},
        "clusters[0].podCIDRs: unknown key (did you mean podCidrs?)",
    ),
    "unknown mesh key": (
        three_clusters(),
        {"maxConnectedCluster": 511},
        "maxConnectedCluster: unknown configuration key",
    ),
    "missing kubeconfig": (_without(2, "kubeconfig"), {}, "clusters[2].kubeconfig: required"),
    "kubeconfig secret not set": (
        _with(0, kubeconfig={"secret": "alphaKubeconfig"}),
        {},
        "clusters[0].kubeconfig.secret: config key clustermesh:alphaKubeconfig is not set",
    ),
    "aws-cni with id 200": (
        _with(0, id=200, cni="aws-cni", routing={"mode": "native"}),
        {},
        "clusters[0].id: 200 cannot be used with aws-cni chaining",
    ),
    "native routing without node cidr": (
        [{**c, "routing": {"mode": "native"}} for c in _without(1, "nodeCidr")],
        {"nativeRoutingCidrs": ["10.0.0.0/8"]},
        "clusters[1].nodeCidr: required with native routing",
    ),
    "bad max connected clusters": (
        three_clusters(),
        {"maxConnectedClusters": 300},
        "maxConnectedClusters: 300 is not supported",
    ),
    "bad cidr": (_with(0, serviceCidr="10.96.0.0/33"), {}, "clusters[0].serviceCidr: '10.96.0.0/33' is not a CIDR"),
    "unsupported cilium": (three_clusters(), {"ciliumVersion": "1.15.0"}, "ciliumVersion: 1.15.0 is not supported"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_configuration_exits_2_naming_the_path(case: str, tmp_path: Path) -> None:
    clusters, mesh, expected = MALFORMED[case]
    path = write_stack_file(tmp_path / "Pulumi.bad.yaml", clusters, **mesh)
    result = runner.invoke(
        app, ["plan", "--config", str(path), "--out", str(tmp_path / "out"), "--project-dir", str(PROJECT_DIR)]
    )
    assert result.exit_code == 2, result.output
    lines = result.output.splitlines()
    assert any(line.startswith(expected) for line in lines), result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists(), "nothing may be written for an invalid configuration"


def test_every_problem_on_its_own_line_in_a_real_process(tmp_path: Path) -> None:
    clusters = _with(2, id=1, podCidrs=["10.11.0.0/17"])
    path = write_stack_file(tmp_path / "Pulumi.bad.yaml", clusters, maxConnectedClusterz=511)
    result = run_cli("plan", "--config", str(path))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines()[1:] == [
        "clusters[2].id: 1 is already used by clusters[0]",
        "clusters[2].podCidrs[0]: 10.11.0.0/17 overlaps clusters[0].podCidrs[0] 10.11.0.0/16",
        "maxConnectedClusterz: unknown configuration key (did you mean maxConnectedClusters?)",
    ]


def test_unreadable_stack_file_exits_2(tmp_path: Path) -> None:
    broken = tmp_path / "Pulumi.broken.yaml"
    broken.write_text("config: [unclosed\n")
    result = runner.invoke(app, ["plan", "--config", str(broken), "--project-dir", str(PROJECT_DIR)])
    assert result.exit_code == 2
    missing = runner.invoke(app, ["plan", "--stack", "nosuchstack", "--project-dir", str(PROJECT_DIR)])
    assert missing.exit_code == 2 and "Pulumi.nosuchstack.yaml: no such file" in missing.output


def test_a_failing_program_exits_1_without_a_traceback(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "Pulumi.yaml").write_text("name: clustermesh\nruntime: python\n")
    (project / "__main__.py").write_text("raise RuntimeError('the cloud is on fire')\n")
    write_stack_file(project / "Pulumi.dev.yaml", three_clusters())
    result = runner.invoke(app, ["plan", "--stack", "dev", "--project-dir", str(project)])
    assert result.exit_code == 1
    assert "RuntimeError: the cloud is on fire" in result.output
    assert "Traceback" not in result.output


def test_secrets_stay_out_of_the_plan_unless_revealed(tmp_path: Path) -> None:
    clusters = _with(0, kubeconfig={"secret": "alphaKubeconfig"})
    stack = tmp_path / "Pulumi.sec.yaml"
    write_stack_file(stack, clusters)
    document = yaml.safe_load(stack.read_text())
    document["config"]["clustermesh:alphaKubeconfig"] = {"secure": "v1:opaque-ciphertext"}
    stack.write_text(yaml.safe_dump(document))

    hidden = runner.invoke(
        app, ["plan", "--config", str(stack), "--out", str(tmp_path / "hidden"), "--project-dir", str(PROJECT_DIR)]
    )
    assert hidden.exit_code == 0, hidden.output
    written = (tmp_path / "hidden" / "plan.json").read_text()
    assert "planner-cannot-decrypt" not in written and "~/.kube/config" not in written
    assert "[secret]" in written

    shown = runner.invoke(
        app,
        [
            "plan",
            "--config",
            str(stack),
            "--out",
            str(tmp_path / "shown"),
            "--reveal-secrets",
            "--project-dir",
            str(PROJECT_DIR),
        ],
    )
    assert shown.exit_code == 0
    assert "planner-cannot-decrypt:clustermesh:alphaKubeconfig" in (tmp_path / "shown" / "plan.json").read_text()


def test_plain_config_secrets_are_kept_secret_too(tmp_path: Path) -> None:
    """A kubeconfig given as a plain secret value (as `pulumi config set --secret` stores it after decryption)."""
    secret = "apiVersion: v1\ntoken: hunter2\n"
    clusters = _with(0, kubeconfig={"secret": "alphaKubeconfig"})
    plan = plan_raw(
        {**raw_config(clusters), "clustermesh:alphaKubeconfig": secret}, frozenset({"clustermesh:alphaKubeconfig"})
    )
    assert "hunter2" not in json.dumps(plan_document(plan, reveal_secrets=False))
    assert "hunter2" in json.dumps(plan_document(plan, reveal_secrets=True))


def test_json_output_is_the_plan_document() -> None:
    result = runner.invoke(app, ["plan", "--stack", "dev", "--json", "--project-dir", str(PROJECT_DIR)])
    assert result.exit_code == 0
    document = json.loads(result.stdout)
    assert document["stack"] == "dev" and len(document["resources"]) >= 9


def test_large_meshes_show_progress(tmp_path: Path) -> None:
    clusters = [cluster(f"c{i}", i, f"10.{i}.0.0/16") for i in range(1, 26)]
    path = write_stack_file(tmp_path / "Pulumi.big.yaml", clusters)
    env = {**os.environ, "COLUMNS": "120"}
    result = subprocess.run(
        [str(CLI), "plan", "--config", str(path)],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "planning clusters" in result.stderr and "25/25" in result.stderr
    small = run_cli("plan", "--stack", "dev")
    assert "planning clusters" not in small.stderr


_TRICKY = st.sampled_from(
    ["yes", "no", "on", "1_000", "0x1F", "1e3", "~", "null", "=", "-", "a: b", "#x", "", "é", "a\nb"]
)
_TEXT = st.one_of(_TRICKY, _TRICKY, st.text(max_size=12), st.text(alphabet="abcXYZ019+/=._-", min_size=1, max_size=140))
_FLAT = st.dictionaries(_TEXT, _TEXT, max_size=4)
_DOCUMENT = st.dictionaries(_TEXT, st.one_of(_FLAT, _TEXT, st.lists(_TEXT, max_size=2), st.integers()), max_size=4)


@settings(max_examples=400, deadline=None)
@given(st.lists(_DOCUMENT, min_size=1, max_size=3))
@example([{"data": {"yes": "1_000", "on": "0x1F"}}])
@example([{"data": {"a" * 130: "b"}}])
def test_fast_manifest_yaml_writes_exactly_what_pyyaml_writes(documents: list[dict[str, Any]]) -> None:
    """The Secret files skip PyYAML for flat maps of plain strings; the text must not differ by a byte."""
    assert report._manifests_yaml(documents) == report._yaml(documents)


def test_fast_manifest_yaml_takes_the_fast_path_for_secret_data() -> None:
    secret = {"apiVersion": "v1", "kind": "Secret", "data": {"beta": "ZW5kcG9pbnRzOg==", "gamma": "Y2VydA=="}}
    assert report._flat_entry("data", secret["data"]) == "data:\n  beta: ZW5kcG9pbnRzOg==\n  gamma: Y2VydA==\n"
    assert report._manifests_yaml([secret]) == report._yaml([secret])


def test_collector_settings_apply_only_while_planning() -> None:
    """The planner tunes the cycle collector for its own growing heap; whoever called it keeps theirs."""
    before = gc.get_threshold()
    with fewer_collections():
        young, middle, _ = gc.get_threshold()
        assert young > before[0]
        assert middle > before[1]
    assert gc.get_threshold() == before


def _documents(path: Path) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in yaml.safe_load_all(path.read_text())}


def _plan_to(out: Path, *args: str) -> None:
    result = runner.invoke(app, ["plan", *args, "--out", str(out), "--project-dir", str(PROJECT_DIR)])
    assert result.exit_code == 0, result.output


def test_dev_stack_writes_each_cluster_the_secrets_naming_exactly_its_peers(tmp_path: Path) -> None:
    stack = yaml.safe_load((PROJECT_DIR / "Pulumi.dev.yaml").read_text())["config"]
    pinned = {c["name"]: c["apiserverExposure"]["loadBalancerIP"] for c in stack["clustermesh:clusters"]}
    _plan_to(tmp_path, "--stack", "dev")

    for name in pinned:
        directory = tmp_path / "clusters" / name
        secrets = _documents(directory / "clustermesh-secrets.yaml")
        peers = set(pinned) - {name}
        assert sorted(secrets) == ["cilium-clustermesh", "cilium-kvstoremesh"]
        for secret in secrets.values():
            assert (secret["kind"], secret["metadata"]["namespace"]) == ("Secret", "kube-system")
            assert set(secret["data"]) == peers, (name, secret["metadata"]["name"])
        for peer in peers:
            remote = yaml.safe_load(base64.b64decode(secrets["cilium-kvstoremesh"]["data"][peer]))
            assert remote["endpoints"] == [f"https://{peer}.mesh.cilium.io:2379"]
            assert remote["cilium-host-aliases"] == [{"hostname": f"{peer}.mesh.cilium.io", "ips": [pinned[peer]]}]
            # With KVStoreMesh the agents read the local cache, whichever peer the entry is for.
            agents = yaml.safe_load(base64.b64decode(secrets["cilium-clustermesh"]["data"][peer]))
            assert agents["endpoints"] == ["https://clustermesh-apiserver.kube-system.svc:2379"]
            # ...with the local client certificate the chart projects as `local-etcd-client.*`.
            assert agents["trusted-ca-file"] == "/var/lib/cilium/clustermesh/local-etcd-client-ca.crt"
            assert agents["cert-file"] == "/var/lib/cilium/clustermesh/local-etcd-client.crt"
            assert agents["key-file"] == "/var/lib/cilium/clustermesh/local-etcd-client.key"
        assert not (directory / "address-patch.yaml").exists(), "Cilium 1.20 patches no pod template"
        assert not (directory / "tls-secrets.yaml").exists(), "key material only with --reveal-secrets"

    ca = x509.load_pem_x509_certificate((tmp_path / "ca" / "ca.crt").read_bytes())
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert not (tmp_path / "ca" / "ca.key").exists()
    leaked = [p for p in tmp_path.rglob("*") if p.is_file() and "PRIVATE KEY" in p.read_text()]
    assert not leaked, "no key material is written without --reveal-secrets"


def test_revealed_plan_writes_a_working_ca_key_and_certificates_it_signed(tmp_path: Path) -> None:
    _plan_to(tmp_path, "--stack", "dev", "--reveal-secrets")
    ca = x509.load_pem_x509_certificate((tmp_path / "ca" / "ca.crt").read_bytes())
    ca_key = serialization.load_pem_private_key((tmp_path / "ca" / "ca.key").read_bytes(), password=None)
    assert ca_key.public_key() == ca.public_key()

    for directory in sorted((tmp_path / "clusters").iterdir()):
        secrets = _documents(directory / "tls-secrets.yaml")
        assert {"clustermesh-apiserver-server-cert", "clustermesh-apiserver-remote-cert"} <= set(secrets)
        for secret in secrets.values():
            assert secret["type"] == "kubernetes.io/tls"
            files = secret["stringData"]
            cert = x509.load_pem_x509_certificate(files["tls.crt"].encode())
            cert.verify_directly_issued_by(ca)
            key = serialization.load_pem_private_key(files["tls.key"].encode(), password=None)
            assert key.public_key() == cert.public_key(), (directory.name, secret["metadata"]["name"])
            assert files["ca.crt"] == (tmp_path / "ca" / "ca.crt").read_text()


def test_cilium_1_19_plan_writes_each_clusters_host_aliases_patch(tmp_path: Path) -> None:
    stack = write_stack_file(
        tmp_path / "Pulumi.old.yaml", three_clusters(), ciliumVersion="1.19.6", kvstoremesh="false"
    )
    _plan_to(tmp_path / "out", "--config", str(stack))
    names = {"alpha", "beta", "gamma"}
    for name in names:
        directory = tmp_path / "out" / "clusters" / name
        (patch,) = _documents(directory / "address-patch.yaml").values()
        assert (patch["kind"], patch["metadata"]["name"]) == ("DaemonSet", "cilium")
        aliases = patch["spec"]["template"]["spec"]["hostAliases"]
        assert {h for alias in aliases for h in alias["hostnames"]} == {f"{p}.mesh.cilium.io" for p in names - {name}}
        assert sorted(_documents(directory / "clustermesh-secrets.yaml")) == ["cilium-clustermesh"]


def test_a_preview_writes_its_files_without_a_ca_not_issued_yet(tmp_path: Path) -> None:
    _plan_to(tmp_path, "--stack", "dev", "--preview", "--reveal-secrets")
    for name in ("k3scl1", "k3scl2", "k3scl3"):
        assert sorted(_documents(tmp_path / "clusters" / name / "clustermesh-secrets.yaml")) == [
            "cilium-clustermesh",
            "cilium-kvstoremesh",
        ]
    assert not (tmp_path / "ca").exists(), "in a preview no certificate is issued, so none is written"
