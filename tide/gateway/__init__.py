"""Tide's data plane: an OpenAI-compatible gateway in front of model-server replicas."""

from tide.gateway.gateway import Gateway
from tide.gateway.routes import DeploymentLoad, DeploymentRoute, ReplicaEndpoint, RouteTable

__all__ = ["DeploymentLoad", "DeploymentRoute", "Gateway", "ReplicaEndpoint", "RouteTable"]
