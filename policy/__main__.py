"""The clustermesh policy pack, as `pulumi preview --policy-pack policy` runs it.

Only this file constructs the PolicyPack (whose constructor serves the engine and never returns); the
rules live in `policy.rules`, where tests and the offline planner import the same objects.
"""

from pulumi_policy import EnforcementLevel, PolicyPack

from policy.rules import PACK_NAME, POLICIES

PolicyPack(name=PACK_NAME, policies=POLICIES, enforcement_level=EnforcementLevel.MANDATORY)
