"""`clustermesh plan` end to end: exit codes, files written, secrets kept out of what it writes."""

from __future__ import annotations

import base64
import datetime
import gc
import ipaddress
import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pulumi.runtime.mocks import MockResourceArgs
from typer.testing import CliRunner

from clustermesh.planner import report
from clustermesh.planner.cli import app
from clustermesh.planner.fabricate import PlanMocks
from clustermesh.planner.fabricate_tls import Fixtures
from clustermesh.planner.graph import Secret
from clustermesh.planner.report import plan_document
from clustermesh.planner.runner import fewer_collections
from components.tokens import HELM_RELEASE, KUBERNETES_PROVIDER, KUBERNETES_SECRET
from tests.conftest import (
    COMPLIANT_EXPOSURE,
    PROJECT_DIR,
    cluster,
    plan_raw,
    raw_config,
    three_clusters,
    write_stack_file,
)

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


def _files(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def test_plan_is_deterministic(tmp_path: Path) -> None:
    """Two plans of the same stack must be byte-identical, every file of them, or diffing plans shows noise."""
    for out in ("a", "b"):
        assert (
            runner.invoke(
                app, ["plan", "--stack", "dev", "--out", str(tmp_path / out), "--project-dir", str(PROJECT_DIR)]
            ).exit_code
            == 0
        )
    first = _files(tmp_path / "a")
    assert {"plan.json", "ca/ca.crt"} <= set(first)
    assert first == _files(tmp_path / "b")


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
    secret = yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "alpha", "cluster": {"server": "https://192.0.2.1:6443"}}],
            "users": [{"name": "alpha", "user": {"token": "hunter2"}}],
            "contexts": [{"name": "alpha", "context": {"cluster": "alpha", "user": "alpha"}}],
            "current-context": "alpha",
        }
    )
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
@example([{"0b_": {}}, {"data": {"0b_": "0x_", "0o_": "1_0"}}])
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


# --- Fixture key material: never the same twice when revealed, marked, short-lived, kept private -------------

_PEM_KEY = re.compile(r"-----BEGIN ([A-Z ]*)PRIVATE KEY-----.*?-----END \1PRIVATE KEY-----", re.DOTALL)


def _strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return [value] if isinstance(value, str) else []


def _private_keys(out: Path) -> set[int]:
    """The private scalar of every private key in any string of any file under `out` (JSON, YAML or PEM)."""
    found = set()
    for path in out.rglob("*"):
        if not path.is_file():
            continue
        text = path.read_text()
        if path.suffix == ".json":
            texts = _strings(json.loads(text))
        elif path.suffix == ".yaml":
            texts = _strings(list(yaml.safe_load_all(text)))
        else:
            texts = [text]
        for match in (m for t in texts for m in _PEM_KEY.finditer(t)):
            key = serialization.load_pem_private_key(match.group(0).encode(), password=None)
            assert isinstance(key, ec.EllipticCurvePrivateKey)
            found.add(key.private_numbers().private_value)
    return found


def _stack(tmp_path: Path, name: str, clusters: list[dict[str, Any]] | None = None, **mesh: Any) -> Path:
    return write_stack_file(tmp_path / f"Pulumi.{name}.yaml", clusters or three_clusters(), **mesh)


def _plan_file(stack: Path, out: Path, *args: str) -> None:
    _plan_to(out, "--config", str(stack), *args)


def test_revealed_runs_share_no_key_across_stacks_or_runs(tmp_path: Path) -> None:
    one, two = _stack(tmp_path, "one"), _stack(tmp_path, "two")
    runs = {
        "one, first run": (one, tmp_path / "one-a"),
        "one, second run": (one, tmp_path / "one-b"),
        "two": (two, tmp_path / "two"),
    }
    keys = {}
    for label, (stack, out) in runs.items():
        _plan_file(stack, out, "--reveal-secrets")
        keys[label] = _private_keys(out)
        # One CA key and a key per certificate: 4 certificates for each of the 3 clusters the stack names.
        assert len(keys[label]) >= 1 + 4 * 3, label
    labels = sorted(keys)
    for index, first in enumerate(labels):
        for second in labels[index + 1 :]:
            assert not keys[first] & keys[second], f"{first} and {second} share a key"


def test_plain_plans_of_two_stacks_share_no_key(tmp_path: Path) -> None:
    """Without --reveal-secrets keys are derived (so plans repeat byte for byte), but from the stack too."""
    public = {}
    for name in ("one", "two"):
        _plan_file(_stack(tmp_path, name), tmp_path / name)
        public[name] = x509.load_pem_x509_certificate((tmp_path / name / "ca" / "ca.crt").read_bytes()).public_key()
    assert public["one"] != public["two"]


def _certificates(out: Path) -> dict[tuple[str, str], x509.Certificate]:
    """(cluster, Secret name) -> the certificate that Secret holds."""
    found = {}
    for directory in sorted((out / "clusters").iterdir()):
        for name, secret in _documents(directory / "tls-secrets.yaml").items():
            found[directory.name, name] = x509.load_pem_x509_certificate(secret["stringData"]["tls.crt"].encode())
    return found


def _organizations(cert: x509.Certificate) -> list[str]:
    return [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]


def test_fixture_certificates_say_so_keep_the_programs_names_and_last_one_day(tmp_path: Path) -> None:
    lifetimes = {"caValidityHours": 20000, "validityHours": 2000, "earlyRenewalHours": 100}
    stack = _stack(tmp_path, "fixtures", certificates=lifetimes)
    _plan_file(stack, tmp_path / "out", "--reveal-secrets")
    plan = json.loads((tmp_path / "out" / "plan.json").read_text())
    asked = {
        r["name"]: r["inputs"]["subject"]["commonName"]
        for r in plan["resources"]
        if r["type"] == "tls:index/certRequest:CertRequest"
    }
    ca = x509.load_pem_x509_certificate((tmp_path / "out" / "ca" / "ca.crt").read_bytes())
    certificates = _certificates(tmp_path / "out")
    assert len(certificates) == 4 * 3
    now = datetime.datetime.now(datetime.UTC)
    for cert in [ca, *certificates.values()]:
        assert "planner fixture" in _organizations(cert)[0] and "not for deployment" in _organizations(cert)[0]
        assert cert.not_valid_after_utc - cert.not_valid_before_utc == datetime.timedelta(days=1)
        assert cert.not_valid_before_utc <= now < cert.not_valid_after_utc
    # The common names are the program's, exactly: etcd turns them into users.
    issued = {cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value for cert in certificates.values()}
    assert issued == set(asked.values())
    for name in ("alpha", "beta", "gamma"):
        assert f"remote-{name}" in issued, "each cluster's remote identity is its own"
    # The program's own request is still what the plan shows it asking for.
    lifetimes_asked = {
        (r["type"].rsplit(":", 1)[-1], r["inputs"]["validityPeriodHours"])
        for r in plan["resources"]
        if "validityPeriodHours" in r["inputs"]
    }
    assert lifetimes_asked == {("SelfSignedCert", 20000), ("LocallySignedCert", 2000)}


def test_revealed_files_are_private_and_the_run_warns(tmp_path: Path) -> None:
    result = run_cli("plan", "--stack", "dev", "--reveal-secrets", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "--reveal-secrets" in result.stderr and "never deploy" in result.stderr
    private = [tmp_path / "ca" / "ca.key", tmp_path / "plan.json", *tmp_path.glob("clusters/*/tls-secrets.yaml")]
    assert len(private) == 2 + 3
    for path in private:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    plain = run_cli("plan", "--stack", "dev", "--out", str(tmp_path))
    assert plain.returncode == 0, plain.stderr
    assert "--reveal-secrets" not in plain.stderr


# --- --out: nothing left from an earlier run, nothing overwritten that the planner did not write ---------------


def test_out_refuses_a_directory_the_planner_did_not_write(tmp_path: Path) -> None:
    foreign = tmp_path / "work"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine\n")
    result = runner.invoke(app, ["plan", "--stack", "dev", "--out", str(foreign), "--project-dir", str(PROJECT_DIR)])
    assert result.exit_code == 2, result.output
    assert "not written by clustermesh plan" in result.output and "Traceback" not in result.output
    assert sorted(p.name for p in foreign.iterdir()) == ["notes.txt"]
    assert (foreign / "notes.txt").read_text() == "mine\n"

    a_file = tmp_path / "plan-here"
    a_file.write_text("x")
    result = runner.invoke(app, ["plan", "--stack", "dev", "--out", str(a_file), "--project-dir", str(PROJECT_DIR)])
    assert result.exit_code == 2 and "not a directory" in result.output

    empty = tmp_path / "empty"
    empty.mkdir()
    _plan_to(empty, "--stack", "dev")
    assert (empty / "plan.json").is_file()


def test_out_keeps_nothing_from_an_earlier_run(tmp_path: Path) -> None:
    out = tmp_path / "out"
    _plan_file(_stack(tmp_path, "before"), out, "--reveal-secrets")
    assert (out / "ca" / "ca.key").is_file() and (out / "clusters" / "beta").is_dir()
    (out / "clusters" / "beta" / "extra.yaml").write_text("left behind\n")

    alpha, _, gamma = three_clusters()
    _plan_file(_stack(tmp_path, "after", [alpha, gamma]), out)
    assert sorted(p.name for p in (out / "clusters").iterdir()) == ["alpha", "gamma"]
    assert not (out / "ca" / "ca.key").exists()
    assert not list(out.rglob("tls-secrets.yaml"))
    assert not _private_keys(out), "no key material from the revealed run survives"
    marker = [p.name for p in out.iterdir() if p.is_file() and p.name not in {"plan.json"}]
    assert len(marker) == 1, "one marker file says the planner wrote this directory"
    assert json.loads((out / "plan.json").read_text())["stack"] == "after"


# --- Fabrication that tells the truth: a read Service answers as its cluster's release asks ------------------

SERVICE = "kubernetes:core/v1:Service"
AWS = "service.beta.kubernetes.io/aws-load-balancer-"
CHART_SERVICE_ID = "kube-system/clustermesh-apiserver"


def _provider(cluster_name: str) -> str:
    return f"urn:pulumi:test::clustermesh::pulumi:providers:kubernetes::{cluster_name}-k8s::{cluster_name}-id"


def _ingress_of_read(mocks: PlanMocks, cluster_name: str) -> list[dict[str, Any]]:
    """What the mocks report for the chart's clustermesh-apiserver Service, read through `cluster_name`'s provider."""
    _, state = mocks.new_resource(
        MockResourceArgs(
            typ=SERVICE,
            name=f"{cluster_name}-clustermesh-apiserver",
            inputs={},
            provider=_provider(cluster_name),
            resource_id=CHART_SERVICE_ID,
            custom=True,
        )
    )
    if "status" not in state:
        return []
    ingress: list[dict[str, Any]] = state["status"]["loadBalancer"]["ingress"]
    return ingress


def _install(mocks: PlanMocks, cluster_name: str, service: dict[str, Any]) -> None:
    mocks.new_resource(
        MockResourceArgs(
            typ=HELM_RELEASE,
            name=f"{cluster_name}-cilium",
            inputs={"name": "cilium", "values": {"clustermesh": {"apiserver": {"service": service}}}},
            provider=_provider(cluster_name),
            custom=True,
        )
    )


AWS_SERVICES: dict[str, dict[str, Any]] = {
    "nlb type annotation": {"type": "LoadBalancer", "annotations": {f"{AWS}type": "nlb"}},
    "external type annotation": {"type": "LoadBalancer", "annotations": {f"{AWS}type": "external"}},
    "internal annotation only": {"type": "LoadBalancer", "annotations": {f"{AWS}internal": "true"}},
    "nlb load balancer class": {"type": "LoadBalancer", "loadBalancerClass": "service.k8s.aws/nlb"},
}


@pytest.mark.parametrize("case", sorted(AWS_SERVICES))
def test_a_read_service_that_asks_aws_for_a_load_balancer_reports_a_hostname_only(case: str) -> None:
    mocks = PlanMocks(fixtures=Fixtures.for_stack("clustermesh", "test"))
    _install(mocks, "eks1", AWS_SERVICES[case])
    _install(mocks, "onprem", {"type": "LoadBalancer", "loadBalancerIP": "192.0.2.44"})
    (entry,) = _ingress_of_read(mocks, "eks1")
    assert "ip" not in entry, "AWS reports no IP for its load balancers"
    assert re.fullmatch(r"k8s-kubesyst-clusterm-[0-9a-f]{10}\.elb\.[a-z]+-[a-z]+-\d\.amazonaws\.com", entry["hostname"])
    # Each cluster's read answers from its own release: the other cluster's pinned address is its own.
    assert _ingress_of_read(mocks, "onprem") == [{"ip": "192.0.2.44", "ipMode": "VIP"}]


def test_a_read_service_reports_the_pinned_ip_or_a_stable_one_and_nothing_for_a_node_port() -> None:
    mocks = PlanMocks(fixtures=Fixtures.for_stack("clustermesh", "test"))
    _install(mocks, "a", {"type": "LoadBalancer", "annotations": {"example.com/team": "net"}})
    _install(mocks, "b", {"type": "NodePort", "nodePort": 32379})
    (entry,) = _ingress_of_read(mocks, "a")
    assert ipaddress.ip_address(entry["ip"]) in ipaddress.ip_network("198.18.0.0/15")
    assert _ingress_of_read(mocks, "a") == [entry], "the same Service reads the same address"
    assert _ingress_of_read(mocks, "b") == []


def test_nlb_annotations_without_a_hostname_are_refused_before_anything_is_planned(tmp_path: Path) -> None:
    """`pulumi up` would stop once the NLB answers with a name and no IP; validation says so up front."""
    exposure = {**COMPLIANT_EXPOSURE, "annotations": {f"{AWS}type": "external", f"{AWS}scheme": "internal"}}
    stack = write_stack_file(tmp_path / "Pulumi.eks.yaml", three_clusters(), apiserverExposure=exposure)
    result = run_cli("plan", "--config", str(stack), "--out", str(tmp_path / "out"))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    for index in range(3):
        assert (
            f"clusters[{index}].apiserverExposure.hostname: required: apiserverExposure.annotations ask for an AWS"
            in result.stderr
        )
    assert not (tmp_path / "out" / "plan.json").exists()


def test_nlb_clusters_with_hostnames_point_their_dns_at_the_hostname_aws_reports() -> None:
    clusters = three_clusters()
    for entry in clusters:
        entry["apiserverExposure"] = {"hostname": f"{entry['name']}.mesh.example.net", "route53ZoneId": "Z0EXAMPLE"}
    plan = plan_raw(raw_config(clusters, apiserverExposure={"annotations": {f"{AWS}type": "nlb"}}))
    reads = {n.name: n for n in plan.nodes if n.read}
    records = {n.name: n for n in plan.nodes if n.type == "aws:route53/record:Record"}
    assert len(records) == len(clusters)
    hostnames = set()
    for entry in clusters:
        read = reads[f"{entry['name']}-clustermesh-apiserver"]
        assert read.outputs is not None
        (ingress,) = read.outputs["status"]["loadBalancer"]["ingress"]
        assert set(ingress) == {"hostname"}
        record = records[f"{entry['name']}-clustermesh-apiserver-dns"].inputs
        assert (record["type"], record["records"]) == ("CNAME", [ingress["hostname"]])
        hostnames.add(ingress["hostname"])
    assert len(hostnames) == len(clusters), "each cluster's load balancer has a name of its own"


# --- A plan people can read: grouped per cluster, one cluster, a table for big meshes; ids and outputs ---------

_ROOT = re.compile(r"^([a-z0-9][\w.-]*) (\S+:\S+:\S+)")
_CHILD = re.compile(r"^[│ ]*[├└]── (\S+) (\S+)")


def _blocks(text: str) -> dict[str, set[tuple[str, str]]]:
    """The printed trees: root's name -> every (name, type) shown in that tree, the root's own included."""
    blocks: dict[str, set[tuple[str, str]]] = {}
    current: set[tuple[str, str]] | None = None
    for line in text.splitlines():
        if root := _ROOT.match(line):
            current = blocks.setdefault(root.group(1), set())
            current.add((root.group(1), root.group(2)))
        elif (child := _CHILD.match(line)) and current is not None:
            if "made by" not in line:
                current.add((child.group(1), child.group(2)))
        elif not line.startswith(("│", " ")):
            current = None
    return blocks


def _wide(*args: str) -> Any:
    result = runner.invoke(app, [*args, "--project-dir", str(PROJECT_DIR)], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    return result


def test_the_tree_shows_each_resource_under_the_cluster_it_goes_to(tmp_path: Path) -> None:
    stack = _stack(tmp_path, "grouped")
    printed = _blocks(_wide("plan", "--config", str(stack), "--no-policy").stdout)
    _plan_file(stack, tmp_path / "out", "--no-policy")
    resources = json.loads((tmp_path / "out" / "plan.json").read_text())["resources"]
    names = ["alpha", "beta", "gamma"]
    assert set(printed) == {*names, "mesh"}
    providers = {r["urn"]: r["name"].removesuffix("-k8s") for r in resources if r["type"] == KUBERNETES_PROVIDER}
    assert sorted(providers.values()) == names
    shown = [pair for block in printed.values() for pair in block]
    assert sorted(shown) == sorted((r["name"], r["type"]) for r in resources), "every resource once"
    for resource in resources:
        pair = (resource["name"], resource["type"])
        if resource["provider"] in providers:  # a Kubernetes resource goes to the cluster its provider reaches
            assert pair in printed[providers[resource["provider"]]], pair
        elif resource["type"].startswith("tls:") and resource["name"].split("-", 1)[0] in names:
            assert pair in printed[resource["name"].split("-", 1)[0]], "a cluster's certificate chain"
    mesh_made = {r["name"] for r in resources if r["provider"] in providers and r["parent"].endswith("::mesh")}
    assert {f"{c}-{s}" for c in names for s in ("cilium-clustermesh", "clustermesh-remote-users")} <= mesh_made
    assert ("mesh-ca", "tls:index/selfSignedCert:SelfSignedCert") in printed["mesh"]


def test_one_cluster_is_shown_alone_and_an_unknown_one_is_refused(tmp_path: Path) -> None:
    stack = _stack(tmp_path, "focus")
    printed = _blocks(_wide("plan", "--config", str(stack), "--cluster", "beta", "--no-policy").stdout)
    assert list(printed) == ["beta"]
    everything = _blocks(_wide("plan", "--config", str(stack), "--no-policy").stdout)
    assert printed["beta"] == everything["beta"]

    unknown = runner.invoke(
        app, ["plan", "--config", str(stack), "--cluster", "zeta", "--project-dir", str(PROJECT_DIR)]
    )
    assert unknown.exit_code == 2
    assert "zeta" in unknown.output and "alpha, beta, gamma" in unknown.output
    assert "Traceback" not in unknown.output
    both = runner.invoke(
        app, ["plan", "--config", str(stack), "--cluster", "beta", "--json", "--project-dir", str(PROJECT_DIR)]
    )
    assert both.exit_code == 2


def _table_rows(text: str) -> dict[str, list[str]]:
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.split("│")[1:-1]]
        if len(cells) == 5 and re.fullmatch(r"c\d\d", cells[0]):
            rows[cells[0]] = cells[1:]
    return rows


def test_a_big_mesh_prints_a_row_per_cluster_and_its_tree_only_on_request(tmp_path: Path) -> None:
    size = 17
    clusters = [cluster(f"c{i:02d}", i, f"10.{i}.0.0/16") for i in range(1, size + 1)]
    pinned = {f"c{i:02d}": f"192.0.2.{i}" for i in range(1, size + 1, 2)}
    for entry in clusters:
        if entry["name"] in pinned:
            entry["apiserverExposure"] = {"loadBalancerIP": pinned[entry["name"]]}
    stack = write_stack_file(tmp_path / "Pulumi.big.yaml", clusters, kvstoremesh=True)
    text = _wide("plan", "--config", str(stack), "--no-policy", "--out", str(tmp_path / "out")).stdout
    assert not _blocks(text), "no tree by default"
    resources = json.loads((tmp_path / "out" / "plan.json").read_text())["resources"]
    rows = _table_rows(text)
    assert sorted(rows) == sorted(c["name"] for c in clusters)
    for name, (count, peers, entries, address) in rows.items():
        own = [r for r in resources if r["id"] is not None and r["name"].startswith(f"{name}-")]
        assert int(count) == len(own)
        assert (int(peers), int(entries)) == (size - 1, 2 * (size - 1)), "two clustermesh Secrets, one entry a peer"
        if name in pinned:
            assert address == pinned[name]
        else:
            assert ipaddress.ip_address(address) in ipaddress.ip_network("198.18.0.0/15"), "read from its Service"
    with_tree = _blocks(_wide("plan", "--config", str(stack), "--no-policy", "--tree").stdout)
    assert set(with_tree) == {c["name"] for c in clusters} | {"mesh"}


def test_plan_json_has_each_resources_id_and_fabricated_outputs(tmp_path: Path) -> None:
    _plan_to(tmp_path / "hidden", "--stack", "dev")
    _plan_to(tmp_path / "shown", "--stack", "dev", "--reveal-secrets")
    hidden = json.loads((tmp_path / "hidden" / "plan.json").read_text())
    assert "planner" in hidden["fabricated"] and "not" in hidden["fabricated"]
    for resource in hidden["resources"]:
        assert {"id", "outputs"} <= set(resource)
        if resource["type"].startswith("clustermesh:"):
            assert resource["id"] is None, "a component has no id"
        else:
            assert isinstance(resource["id"], str) and resource["id"], resource["name"]
    keys = [r for r in hidden["resources"] if r["type"] == "tls:index/privateKey:PrivateKey"]
    assert keys and all(r["outputs"]["privateKeyPem"] == "[secret]" for r in keys)
    shown = {(r["name"], r["type"]): r for r in json.loads((tmp_path / "shown" / "plan.json").read_text())["resources"]}
    ca_key = shown["mesh-ca", "tls:index/privateKey:PrivateKey"]["outputs"]["privateKeyPem"]
    assert ca_key == (tmp_path / "shown" / "ca" / "ca.key").read_text()
    ca_cert = shown["mesh-ca", "tls:index/selfSignedCert:SelfSignedCert"]["outputs"]["certPem"]
    assert ca_cert == (tmp_path / "shown" / "ca" / "ca.crt").read_text()
    releases = [r for r in hidden["resources"] if r["type"] == HELM_RELEASE]
    assert releases and all(r["outputs"]["status"]["status"] == "deployed" for r in releases)

    _plan_to(tmp_path / "preview", "--stack", "dev", "--preview")
    previewed = json.loads((tmp_path / "preview" / "plan.json").read_text())["resources"]
    assert {r["id"] for r in previewed if r["type"] == HELM_RELEASE} == {"[unknown]"}
    assert all("status" not in r["outputs"] for r in previewed if r["type"] == HELM_RELEASE)


def test_answered_outputs_share_the_inputs_they_echo_and_secrets_stay_empty() -> None:
    """The plan keeps each echoed value once (a 511-cluster plan must not hold a second copy of every input)."""
    plan = plan_raw(raw_config(three_clusters()))
    releases = [n for n in plan.nodes if n.type == HELM_RELEASE]
    assert releases
    for release in releases:
        assert release.outputs is not None and release.outputs["values"] is release.inputs["values"]
    opaque = [n for n in plan.nodes if n.type == KUBERNETES_SECRET and n.inputs.get("type") == "Opaque"]
    # Empty, and secret as the engine makes a Secret's data (the SDK lists it in additional_secret_outputs).
    assert opaque and all(n.outputs is not None and n.outputs["data"] == Secret({}) for n in opaque)
