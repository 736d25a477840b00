"""Running the real `__main__.py` under Pulumi's mocks and collecting the graph it registers."""

from __future__ import annotations

import gc
import runpy
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pulumi
from pulumi.runtime import settings
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _ensure_event_loop, _sync_await

from clustermesh.planner.fabricate import FunctionCall, PlanMocks
from clustermesh.planner.fabricate_tls import Fixtures
from clustermesh.planner.graph import UNKNOWN, GraphMonitor, Node, Secret
from clustermesh.planner.stackfile import StackSettings

T = TypeVar("T")
GC_THRESHOLDS = (100_000, 1000, 1000)
"""Young collections only, and rarely. Pulumi holds nearly every object a program makes until it ends, so what
survives a young collection stays alive: re-scanning it in older generations freed nothing and cost 1.5-1.8 s
of a 511-cluster plan (measured with gc.callbacks; peak memory unchanged)."""


@dataclass
class CapturedPlan:
    project: str
    stack: str
    nodes: list[Node]
    outputs: dict[str, Any]
    """Stack outputs, decoded (secrets and unknowns marked)."""
    calls: list[FunctionCall] = field(default_factory=list)
    """The provider functions the program called, in order, with the planner's answers."""


class _InlineExecutor(ThreadPoolExecutor):
    """Answers each engine call where the SDK submits it, instead of on a worker thread.

    The SDK hands every registration to the loop's default executor. With worker threads the loop, which
    holds the GIL while it serializes, and the threads contend: a 511-cluster mesh queued about a thousand
    requests and planned in 48 s; answered inline (the mock monitor needs no thread) it took 40 s.
    """

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        future: Future[T] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            future.set_exception(exc)
        return future


@contextmanager
def fewer_collections() -> Iterator[None]:
    """Run the cycle collector less often while a plan is built and reported.

    Pulumi keeps every Output, future and task alive until the program ends, and the plan keeps every
    input after it, so each collection walks a heap that only grows: with the default thresholds a
    511-cluster plan spent a third of its time there.
    """
    previous = gc.get_threshold()
    gc.set_threshold(*GC_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*previous)


async def _resolve(value: Any) -> Any:
    """An exported value, resolved with each nested secret or unknown marked where it is."""
    if isinstance(value, dict):
        return {k: await _resolve(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [await _resolve(v) for v in value]
    output = pulumi.Output.from_input(value)
    known = await output.is_known()
    secret = await output.is_secret()
    resolved = await output.future() if known else UNKNOWN
    return Secret(resolved) if secret else resolved


def run_program(
    project_dir: Path,
    stack: StackSettings,
    *,
    preview: bool = False,
    on_register: Callable[[Node], None] | None = None,
    mocks: type[PlanMocks] = PlanMocks,
    random_keys: bool = False,
) -> CapturedPlan:
    """Run the program of `project_dir` with `stack`'s config, as `pulumi up` (or preview) would.

    `mocks` stands in for the clouds; by default `PlanMocks` (see `clustermesh.planner.fabricate`). Key material
    derives from the project and stack, or with `random_keys` is fresh for this run (for a plan that shows it).
    """
    if str(project_dir) not in sys.path:
        sys.path.insert(0, str(project_dir))

    def program() -> None:
        runpy.run_path(str(project_dir / "__main__.py"), run_name="__main__")

    return run_function(program, stack, preview=preview, on_register=on_register, mocks=mocks, random_keys=random_keys)


def run_function(
    program: Callable[[], None],
    stack: StackSettings,
    *,
    preview: bool = False,
    on_register: Callable[[Node], None] | None = None,
    mocks: type[PlanMocks] = PlanMocks,
    random_keys: bool = False,
) -> CapturedPlan:
    """`run_program` for a program given as a function (a test's few resources), under the same mocks."""
    settings.SETTINGS.rpc_manager.clear()
    settings.SETTINGS.outputs.clear()
    settings.set_root_resource(None)  # type: ignore[arg-type]  # each plan gets a fresh stack resource
    pulumi.runtime.set_all_config(stack.config, sorted(stack.secret_keys))
    clouds = mocks(preview=preview, fixtures=Fixtures.for_stack(stack.project, stack.stack, random=random_keys))
    monitor = GraphMonitor(clouds, on_register=on_register)
    pulumi.runtime.set_mocks(clouds, project=stack.project, stack=stack.stack, preview=preview, monitor=monitor)

    loop = _ensure_event_loop()  # type: ignore[no-untyped-call]
    loop.set_default_executor(_InlineExecutor(max_workers=1))
    with fewer_collections():
        _sync_await(run_pulumi_func(program))

    root = settings.get_root_resource()
    exports = dict(getattr(root, "outputs", {}) or {})
    outputs = {name: _sync_await(_resolve(value)) for name, value in exports.items()}
    return CapturedPlan(stack.project, stack.stack, monitor.nodes, outputs, clouds.calls)
