"""Trace replay through the real autoscaler in virtual time (`tide sim`)."""
