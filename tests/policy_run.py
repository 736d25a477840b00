"""Running one rule of the policy pack on resources built as the engine shows them, for the rules' tests."""

from __future__ import annotations

from pulumi_policy import (
    PolicyResource,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from policy.rules import POLICIES

RULES = {p.name: p for p in POLICIES}


def stack_rule(name: str, resources: list[PolicyResource]) -> list[str]:
    """The messages stack rule `name` reports on `resources`."""
    policy = RULES[name]
    assert isinstance(policy, StackValidationPolicy)
    found: list[str] = []
    policy.validate(StackValidationArgs(resources, {}), lambda m, u=None: found.append(m))  # type: ignore[misc]
    return found


def resource_rule(name: str, resource: PolicyResource) -> list[str]:
    """The messages resource rule `name` reports on `resource` (with its own options and provider)."""
    policy = RULES[name]
    assert isinstance(policy, ResourceValidationPolicy)
    found: list[str] = []
    args = ResourceValidationArgs(
        resource.resource_type, resource.props, resource.urn, resource.name, resource.opts, resource.provider, {}
    )
    policy.validate(args, lambda m, u=None: found.append(m))  # type: ignore[misc]
    return found
