"""`clustermesh plan`: the real program, planned offline under Pulumi's mocks.

Exit codes: 0 planned, 1 any other failure, 2 invalid configuration (every problem on its own line),
3 a mandatory rule of the policy pack is violated.
"""

from __future__ import annotations

import gc
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from clustermesh.config import ConfigError, load_stack_config
from clustermesh.planner.graph import Node

if TYPE_CHECKING:
    from clustermesh.model import MeshConfig
    from clustermesh.planner.policy_check import Violation
    from clustermesh.planner.runner import CapturedPlan
from clustermesh.planner.stackfile import StackFileError, StackSettings, find_project_dir, load_stack
from components.tokens import MESH_CLUSTER

EXIT_INVALID_CONFIG = 2
EXIT_FAILURE = 1
EXIT_POLICY_VIOLATION = 3
PROGRESS_THRESHOLD = 20
"""Meshes with more clusters than this show a progress bar while they plan."""
TREE_THRESHOLD = 16
"""Meshes with more clusters than this print a table with a row per cluster; their tree only with --tree."""
REVEAL_WARNING = (
    "warning: --reveal-secrets: private keys and secret values are shown in what is printed and written "
    "(files that hold them are mode 0600). The keys and certificates are planner fixtures, random for this run "
    "and valid for one day: never deploy them."
)

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
err = Console(stderr=True)


@app.callback()
def _root() -> None:
    """Plan a Cilium Cluster Mesh without the Pulumi CLI, plugins or a cloud."""


def _fail(code: int, lines: list[str], heading: str) -> typer.Exit:
    # Plain prints: a console would wrap long paths, and each problem must stay on its own line.
    print(f"{heading}:", file=sys.stderr)
    for line in lines:
        print(line, file=sys.stderr)
    return typer.Exit(code)


@app.command()
def plan(  # noqa: PLR0917 - typer maps each option to a parameter
    stack: Annotated[str | None, typer.Option(help="Plan Pulumi.<stack>.yaml (default: dev).")] = None,
    config: Annotated[Path | None, typer.Option(help="Plan a file in the Pulumi.<stack>.yaml format.")] = None,
    out: Annotated[Path | None, typer.Option(help="Write plan.json and per-cluster files here.")] = None,
    reveal_secrets: Annotated[bool, typer.Option(help="Show secret values in what is written.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print plan.json to stdout instead of the tree.")] = False,
    preview: Annotated[bool, typer.Option(help="Plan as a preview: cloud-assigned values stay unknown.")] = False,
    project_dir: Annotated[Path, typer.Option(help="The Pulumi project (default: found from here).")] = Path(),
    policy: Annotated[bool, typer.Option(help="Check the plan against the policy pack (policy/).")] = True,
    policy_config: Annotated[
        Path | None, typer.Option(help="Enforcement overrides, as for `pulumi preview --policy-pack-config`.")
    ] = None,
    cluster: Annotated[str | None, typer.Option(help="Print only this cluster's resources.")] = None,
    tree: Annotated[
        bool, typer.Option(help=f"Print every cluster's tree even for a mesh of more than {TREE_THRESHOLD} clusters.")
    ] = False,
) -> None:
    """Plan the mesh of a stack: print its resources per cluster and write what each cluster gets."""
    # Imported here so that an invalid configuration is reported before the Pulumi SDK is even loaded.
    from clustermesh.planner.policy_check import PolicyConfigError, check, load_levels  # noqa: PLC0415
    from clustermesh.planner.runner import fewer_collections, run_program  # noqa: PLC0415

    if stack is not None and config is not None:
        raise _fail(EXIT_INVALID_CONFIG, ["give --stack or --config, not both"], "usage error")
    if as_json and cluster is not None:
        raise _fail(EXIT_INVALID_CONFIG, ["--json prints the whole plan; --cluster narrows the tree"], "usage error")
    project, settings, mesh = _load(project_dir, stack, config)
    names = [c.name for c in mesh.clusters]
    if cluster is not None and cluster not in names:
        raise _fail(EXIT_INVALID_CONFIG, [f"the stack's clusters are: {', '.join(names)}"], f"no cluster {cluster!r}")
    try:
        levels = load_levels(policy_config) if policy_config is not None else {}
    except PolicyConfigError as exc:
        raise _fail(EXIT_INVALID_CONFIG, exc.problems, "cannot read the policy config") from None
    if out is not None:
        _check_out(out)
    if reveal_secrets:
        print(REVEAL_WARNING, file=sys.stderr)

    with fewer_collections():  # a large plan is one heap that only grows until the command ends
        stdout = Console(stderr=as_json)
        with _progress(len(mesh.clusters)) as on_register:
            try:
                captured = run_program(
                    project, settings, preview=preview, on_register=on_register, random_keys=reveal_secrets
                )
            except Exception as exc:
                raise _fail(EXIT_FAILURE, [_program_error(exc)], "the program failed to plan") from None

        _show(captured, stdout, as_json=as_json, reveal_secrets=reveal_secrets, cluster=cluster, tree=tree)
        if out is not None:
            _write_out(captured, out, stdout, reveal_secrets=reveal_secrets)
        if policy and _report_violations(check(captured, levels)):
            raise typer.Exit(EXIT_POLICY_VIOLATION)


def _program_error(exc: BaseException) -> str:
    """The program's own error, without the SDK's wrappers ("While processing input: ..., value <Output ...>")."""
    seen = {id(exc)}
    while str(exc).startswith("While processing "):
        # The SDK chains such a wrapper to itself (`__cause__`); what it wrapped is its `__context__`.
        wrapped = exc.__cause__ if exc.__cause__ is not exc else exc.__context__
        if wrapped is None or id(wrapped) in seen:
            break
        seen.add(id(wrapped))
        exc = wrapped
    return f"{type(exc).__name__}: {exc}"


def _load(project_dir: Path, stack: str | None, config: Path | None) -> tuple[Path, StackSettings, MeshConfig]:
    """The project, its stack's settings and the validated mesh; exit 2 with every problem if any."""
    try:
        project = find_project_dir(project_dir.resolve())
        settings = load_stack(project, stack=stack, config_file=config)
    except StackFileError as exc:
        raise _fail(EXIT_INVALID_CONFIG, exc.problems, "cannot read the stack configuration") from None
    try:
        mesh = load_stack_config(settings.config, settings.secret_keys)
    except ConfigError as exc:
        raise _fail(
            EXIT_INVALID_CONFIG, [str(p) for p in exc.problems], f"invalid configuration in {settings.source}"
        ) from None
    return project, settings, mesh


def _check_out(out: Path) -> None:
    """Refuse, before planning, an --out directory the planner would refuse to write (exit 2)."""
    from clustermesh.planner.report import OutDirError, check_out_dir  # noqa: PLC0415

    try:
        check_out_dir(out)
    except OutDirError as exc:
        raise _fail(EXIT_INVALID_CONFIG, [str(exc)], "cannot write the plan there") from None


def _show(
    captured: CapturedPlan, stdout: Console, *, as_json: bool, reveal_secrets: bool, cluster: str | None, tree: bool
) -> None:
    """plan.json on stdout; or one cluster's tree; or every cluster's (a table per cluster for a big mesh)."""
    from clustermesh.planner.report import (  # noqa: PLC0415
        cluster_components,
        plan_document,
        print_clusters,
        print_summary,
        print_tree,
    )

    if as_json:
        print(json.dumps(plan_document(captured, reveal_secrets=reveal_secrets), indent=2, sort_keys=True))
        return
    if cluster is not None:
        print_tree(captured, stdout, cluster=cluster)
        print_summary(captured, stdout, cluster=cluster)
        return
    big = len(cluster_components(captured)) > TREE_THRESHOLD
    if tree or not big:
        print_tree(captured, stdout)
    if big:
        print_clusters(captured, stdout)
    print_summary(captured, stdout)


def _write_out(captured: CapturedPlan, out: Path, stdout: Console, *, reveal_secrets: bool) -> None:
    from clustermesh.planner.report import OutDirError, write_plan  # noqa: PLC0415

    try:
        written = write_plan(captured, out, reveal_secrets=reveal_secrets)
    except OutDirError as exc:
        raise _fail(EXIT_INVALID_CONFIG, [str(exc)], "cannot write the plan there") from None
    except OSError as exc:
        raise _fail(EXIT_FAILURE, [str(exc)], f"cannot write the plan to {out}") from None
    stdout.print(f"wrote {len(written)} files under {out}")


def _report_violations(violations: list[Violation]) -> bool:
    """Print each violation (level, rule, resource, message); whether any of them is mandatory."""
    for v in violations:
        where = v.urn.rsplit("::", 1)[-1] if v.urn else "stack"
        print(f"policy {v.level.value}: {v.policy}: {where}: {v.message}", file=sys.stderr)
    return any(v.mandatory for v in violations)


class _progress:
    """A progress bar on stderr, counted in clusters, for meshes large enough to take a while."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.bar: Progress | None = None

    def __enter__(self) -> _Counter:
        if self.total <= PROGRESS_THRESHOLD:
            return _Counter(None, TaskID(0))
        self.bar = Progress(
            TextColumn("planning clusters"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err
        )
        self.bar.start()
        return _Counter(self.bar, self.bar.add_task("plan", total=self.total))

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()


class _Counter:
    def __init__(self, bar: Progress | None, task: TaskID) -> None:
        self.bar, self.task = bar, task

    def __call__(self, node: Node) -> None:
        if self.bar is not None and node.type == MESH_CLUSTER:
            self.bar.advance(self.task)


def main() -> None:
    try:
        app()
    finally:
        # The process ends here. A large plan leaves a heap of a million cyclic objects (Pulumi's resources,
        # outputs and tasks); frozen, the collector that runs at exit skips it, instead of walking and freeing
        # it object by object for seconds just before the operating system reclaims it all at once.
        gc.freeze()
