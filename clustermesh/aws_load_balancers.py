"""What marks a Kubernetes Service as one an AWS load balancer fronts, shared by validation and the planner.

AWS load balancers answer with a DNS name and no IP, whichever controller made them: EKS's built-in cloud
controller and the AWS Load Balancer Controller both read `service.beta.kubernetes.io/aws-load-balancer-*`
annotations, and the latter takes Services of its `loadBalancerClass`.
"""

from __future__ import annotations

from collections.abc import Iterable

ANNOTATION_PREFIX = "service.beta.kubernetes.io/aws-load-balancer-"
LOAD_BALANCER_CONTROLLER_CLASS = "service.k8s.aws/nlb"
"""The `loadBalancerClass` of the AWS Load Balancer Controller's network load balancers."""
LOAD_BALANCER_CLASSES = frozenset({LOAD_BALANCER_CONTROLLER_CLASS})


def asks_for_aws_load_balancer(annotation_keys: Iterable[object], load_balancer_class: object = None) -> bool:
    """Whether a Service with these annotation keys (and class) is fronted by an AWS load balancer."""
    return load_balancer_class in LOAD_BALANCER_CLASSES or any(
        str(key).startswith(ANNOTATION_PREFIX) for key in annotation_keys
    )
