"""The policy pack's rules, run on a captured plan the way the engine runs them in a preview.

Each resource is shown to the rules as the engine shows it: inputs with secrets decrypted and values not
known yet as the engine's unknown (which the rules' proxy turns into `UnknownValueError`), its provider,
parent and dependencies. The stack's outputs come as the `pulumi:pulumi:Stack` resource, with secret
outputs masked: the planner, unlike the engine, knows which outputs are secret, and says so in the config
of the rule that needs it.
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pulumi.runtime import rpc
from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyCustomTimeouts,
    PolicyProviderResource,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.policy import _NotApplicableError
from pulumi_policy.proxy import unknown_checking_proxy

from clustermesh.planner.graph import Node, reveal
from clustermesh.planner.runner import CapturedPlan
from components.tokens import STACK
from policy.rules import PACK_NAME, POLICIES

PLANNER_CONFIG: dict[str, dict[str, Any]] = {"no-plain-secret-outputs": {"outputSecretsMarked": True}}
LEVELS = {level.value: level for level in EnforcementLevel}


@dataclass(frozen=True)
class Violation:
    policy: str
    level: EnforcementLevel
    urn: str | None
    message: str

    @property
    def mandatory(self) -> bool:
        return self.level is EnforcementLevel.MANDATORY


class PolicyConfigError(Exception):
    """The policy config file cannot be used; `problems` lists why."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


def load_levels(path: Path) -> dict[str, EnforcementLevel]:
    """Enforcement overrides in the format of `pulumi preview --policy-pack-config`:
    `{"<rule>": "advisory"}` or `{"<rule>": {"enforcementLevel": "advisory"}}`.
    """
    try:
        raw = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise PolicyConfigError([f"{path}: {exc}"]) from None
    if not isinstance(raw, dict):
        raise PolicyConfigError([f"{path}: expected a JSON object of rule names"])
    known = {p.name for p in POLICIES}
    levels, problems = {}, []
    for name, setting in raw.items():
        level = setting.get("enforcementLevel") if isinstance(setting, dict) else setting
        if name != "all" and name not in known:
            problems.append(f"{path}: {name}: no such rule in the {PACK_NAME} pack ({', '.join(sorted(known))})")
        elif level is None and isinstance(setting, dict):
            continue  # a rule's own settings without a level: its level stays (the planner sets those settings)
        elif level not in LEVELS:
            problems.append(f"{path}: {name}: enforcement level {level!r} is not one of {', '.join(LEVELS)}")
        else:
            levels[name] = LEVELS[level]
    if problems:
        raise PolicyConfigError(problems)
    return levels


def _engine_view(value: Any, *, secrets: bool = True) -> Any:
    """Decoded values as the engine hands them to a policy: unknowns as the engine's marker, secrets decrypted
    (resource inputs) or masked (stack outputs, whose secrecy only the planner knows)."""
    return reveal(value, secrets=secrets, unknown=rpc.UNKNOWN)


def _options(node: Node | None) -> PolicyResourceOptions:
    options = node.options if node is not None else {}
    return PolicyResourceOptions(
        protect=options.get("protect", False),
        ignore_changes=options.get("ignoreChanges", []),
        delete_before_replace=options.get("deleteBeforeReplace", False),
        aliases=[],
        custom_timeouts=PolicyCustomTimeouts(0, 0, 0),
        additional_secret_outputs=options.get("additionalSecretOutputs", []),
        parent=node.parent or None if node is not None else None,
    )


def _state(node: Node) -> dict[str, Any]:
    """What the engine shows a stack policy of a resource: a component's registered outputs (they replace its
    inputs in the state), a custom resource's inputs (its outputs echo them, or are not known yet)."""
    if not node.custom and node.outputs is not None:
        return node.outputs
    return node.inputs


def _resources(plan: CapturedPlan) -> list[PolicyResource]:
    providers = {
        n.urn: PolicyProviderResource(n.type, unknown_checking_proxy(_engine_view(n.inputs)), n.urn, n.name)
        for n in plan.nodes
        if n.type.startswith("pulumi:providers:")
    }
    resources = {
        n.urn: PolicyResource(
            n.type,
            unknown_checking_proxy(_engine_view(_state(n))),
            n.urn,
            n.name,
            _options(n),
            providers.get(n.provider),
            None,
            [],
            {},
        )
        for n in plan.nodes
    }
    for node in plan.nodes:
        resources[node.urn].parent = resources.get(node.parent)
        resources[node.urn].dependencies = [resources[d] for d in node.dependencies if d in resources]
    stack_name = f"{plan.project}-{plan.stack}"
    stack_urn = f"urn:pulumi:{plan.stack}::{plan.project}::{STACK}::{stack_name}"
    outputs = unknown_checking_proxy(_engine_view(plan.outputs, secrets=False))
    stack = PolicyResource(STACK, outputs, stack_urn, stack_name, _options(None), None, None, [], {})
    return [*resources.values(), stack]


def _call(validate: Any, args: Any, report: Any) -> None:
    """One validation, as the engine runs it: awaited if it is a coroutine; `not_applicable` ends it quietly."""
    try:
        result = validate(args, report)
        if inspect.isawaitable(result):
            loop = asyncio.new_event_loop()
            try:
                loop.run_until_complete(result)
            finally:
                loop.close()
    except _NotApplicableError:
        return


def _validators(policy: Policy) -> list[Any]:
    validate = getattr(policy, "validate", None)
    if validate is None:
        return []
    return list(validate) if isinstance(validate, list) else [validate]


def check(plan: CapturedPlan, levels: Mapping[str, EnforcementLevel] | None = None) -> list[Violation]:
    """Every violation of the pack's rules in `plan`, each at its enforcement level (overrides in `levels`)."""
    levels = levels or {}
    resources = _resources(plan)
    violations: list[Violation] = []
    for policy in POLICIES:
        level = levels.get(policy.name) or levels.get("all") or policy.enforcement_level or EnforcementLevel.MANDATORY
        if level is EnforcementLevel.DISABLED:
            continue
        config = PLANNER_CONFIG.get(policy.name, {})

        def report(message: str, urn: str | None = None, *, _policy: str = policy.name, _level: Any = level) -> None:
            violations.append(Violation(_policy, _level, urn, message))

        for validate in _validators(policy):
            if isinstance(policy, StackValidationPolicy):
                _call(validate, StackValidationArgs(resources, config), report)
                continue
            for resource in resources:
                args = ResourceValidationArgs(
                    resource.resource_type,
                    resource.props,
                    resource.urn,
                    resource.name,
                    resource.opts,
                    resource.provider,
                    config,
                )
                _call(validate, args, lambda m, u=None, _urn=resource.urn: report(m, u or _urn))
    return violations
