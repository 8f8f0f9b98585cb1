"""Control: reconciles desired state into replicas, lifecycle states, rollouts, scaling."""
