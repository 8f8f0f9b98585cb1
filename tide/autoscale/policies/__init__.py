"""Built-in autoscaling policies. Each module registers itself on import; list a new one here."""

from tide.autoscale.policies import knative, tide

__all__ = ["knative", "tide"]
