"""The rules a configuration must obey beyond its shape: mesh-wide (`mesh`) and per cluster kind (`openstack`)."""

from clustermesh.validation.mesh import annotation_key_problem, kubeconfig_problems, validate_mesh
from clustermesh.validation.problem import Problem

__all__ = ["Problem", "annotation_key_problem", "kubeconfig_problems", "validate_mesh"]
