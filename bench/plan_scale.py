"""How the offline plan scales with the number of clusters: time, peak memory, resources, largest Secret.

Each size is planned in its own process (`clustermesh plan --config ... --out ...`), exactly as a user
runs it, so peak memory is that process's own. The largest Secret is measured on the clustermesh Secrets
the plan writes (the certificate Secrets, about 2 KiB each, are written only with --reveal-secrets).
Not a test: the figures depend on the machine.

    .venv/bin/python bench/plan_scale.py                      # N = 2, 16, 64, 255, 511
    .venv/bin/python bench/plan_scale.py --sizes 2 --sizes 64 --markdown --repeat 3
    .venv/bin/python bench/plan_scale.py --addresses pinned      # loadBalancerIP pinned: no reads

With --repeat, every size is planned once per round, that many rounds: the time shown is the median (these
machines vary by 10-20% from run to run), the memory the largest.
"""

from __future__ import annotations

import ipaddress
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.table import Table

PROJECT_DIR = Path(__file__).resolve().parent.parent
CLUSTERMESH = Path(sys.executable).parent / "clustermesh"
DEFAULT_SIZES = [2, 16, 64, 255, 511]
MAX_CLUSTERS = 511
GROWTH_FROM = 64
"""The growth budget compares a full mesh with one of this size, planned in the same round."""


class Addresses(StrEnum):
    """How the clusters' clustermesh-apiserver addresses are known."""

    LOAD_BALANCER = "load-balancer"
    """Read from each LoadBalancer Service: every remote Secret waits on every cluster's read (N² edges)."""
    PINNED = "pinned"
    """`loadBalancerIP` pinned per cluster: no reads, and every Secret is known from the start."""


def mesh_stack(size: int, addresses: Addresses = Addresses.LOAD_BALANCER) -> dict[str, Any]:
    """A stack file for `size` running clusters: disjoint pod and node ranges, addresses as `addresses` says."""
    pods = ipaddress.ip_network("10.0.0.0/8").subnets(new_prefix=18)
    nodes = ipaddress.ip_network("172.16.0.0/12").subnets(new_prefix=24)
    pinned = ipaddress.ip_network("172.31.0.0/16").hosts()
    clusters = [
        {
            "name": f"cluster-{index:03d}",
            "id": index,
            "kind": "existing",
            "podCidrs": [str(next(pods))],
            "serviceCidr": "192.168.0.0/16",
            "nodeCidr": str(next(nodes)),
            "kubeconfig": {"path": "~/.kube/config", "context": f"cluster-{index:03d}"},
            **({"apiserverExposure": {"loadBalancerIP": str(next(pinned))}} if addresses is Addresses.PINNED else {}),
        }
        for index in range(1, size + 1)
    ]
    return {
        "config": {
            "pulumi:disable-default-providers": ["*"],
            "clustermesh:maxConnectedClusters": MAX_CLUSTERS,
            "clustermesh:apiserverExposure": {"type": "LoadBalancer", "loadBalancerSourceRanges": ["172.16.0.0/12"]},
            "clustermesh:clusters": clusters,
        }
    }


@dataclass(frozen=True)
class Measurement:
    clusters: int
    seconds: float
    peak_mib: float
    resources: int
    largest_secret_kib: float


def largest_secret_bytes(out: Path) -> int:
    """The largest clustermesh Secret the plan wrote, as the API server stores it: its manifest, JSON-encoded."""
    sizes = [
        len(json.dumps(secret, separators=(",", ":")))
        for path in out.glob("clusters/*/clustermesh-secrets.yaml")
        for secret in yaml.load_all(path.read_text(), Loader=yaml.CSafeLoader)
    ]
    return max(sizes, default=0)


def inspect_plan(out: Path) -> tuple[int, int]:
    """What a plan wrote: its resource count and its largest clustermesh Secret in bytes."""
    plan = json.loads((out / "plan.json").read_text())
    return len(plan["resources"]), largest_secret_bytes(out)


def measure(size: int, workdir: Path, addresses: Addresses, inspector: Executor) -> Measurement:
    config = workdir / f"Pulumi.bench-{size}.yaml"
    config.write_text(yaml.safe_dump(mesh_stack(size, addresses)))
    out = workdir / f"plan-{size}"
    command = [str(CLUSTERMESH), "plan", "--config", str(config), "--out", str(out)]
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=PROJECT_DIR, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(
            f"planning {size} clusters failed:\n{process.stderr.read().decode() if process.stderr else ''}"
        )
    resources, largest_secret = inspector.submit(inspect_plan, out).result()
    return Measurement(
        clusters=size,
        seconds=seconds,
        peak_mib=usage.ru_maxrss / 1024,  # Linux reports KiB
        resources=resources,
        largest_secret_kib=largest_secret / 1024,
    )


def summary(runs: list[Measurement]) -> Measurement:
    """One size's runs: the median time, the largest memory."""
    return Measurement(
        clusters=runs[0].clusters,
        seconds=statistics.median(r.seconds for r in runs),
        peak_mib=max(r.peak_mib for r in runs),
        resources=runs[0].resources,
        largest_secret_kib=runs[0].largest_secret_kib,
    )


def main(
    sizes: Annotated[list[int] | None, typer.Option(help="Mesh sizes to plan.")] = None,
    markdown: Annotated[bool, typer.Option(help="Print a Markdown table (for the README).")] = False,
    repeat: Annotated[int, typer.Option(min=1, help="Rounds of every size: median time, largest memory.")] = 1,
    addresses: Annotated[Addresses, typer.Option(help="How apiserver addresses are known.")] = Addresses.LOAD_BALANCER,
) -> None:
    sizes = sizes or DEFAULT_SIZES
    runs: dict[int, list[Measurement]] = {size: [] for size in sizes}
    console = Console(stderr=True)
    # The plans are read in another process: parsing a large one grows a process by hundreds of MiB, and a
    # plan started from this one would count them in its own peak memory.
    inspector = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
    with tempfile.TemporaryDirectory() as tmp, inspector:
        # Round after round rather than size after size: a drift in the machine's speed then reaches every
        # size alike, instead of skewing the ratio between two sizes planned minutes apart.
        for round_number in range(1, repeat + 1):
            for size in sizes:
                console.print(f"round {round_number}/{repeat}: planning {size} clusters ...")
                runs[size].append(measure(size, Path(tmp), addresses, inspector))
    measurements = [summary(runs[size]) for size in sizes]
    header = ["clusters", "plan time (s)", "peak memory (MiB)", "resources", "largest Secret (KiB)"]
    rows = [
        [str(m.clusters), f"{m.seconds:.1f}", f"{m.peak_mib:.0f}", str(m.resources), f"{m.largest_secret_kib:.1f}"]
        for m in measurements
    ]
    if markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "|".join("---:" for _ in header) + "|")
        for row in rows:
            print("| " + " | ".join(row) + " |")
    else:
        table = Table(title=f"offline plan, {os.cpu_count()} CPUs")
        for column in header:
            table.add_column(column, justify="right")
        for row in rows:
            table.add_row(*row)
        Console().print(table)
    if GROWTH_FROM in runs and MAX_CLUSTERS in runs:
        growth = statistics.median(
            big.seconds / small.seconds for small, big in zip(runs[GROWTH_FROM], runs[MAX_CLUSTERS], strict=True)
        )
        print(f"\ngrowth: plan time for {MAX_CLUSTERS} / for {GROWTH_FROM} clusters = {growth:.1f} (median of rounds)")


if __name__ == "__main__":
    typer.run(main)
