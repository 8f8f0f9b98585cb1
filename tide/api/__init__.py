"""The management REST API over the store: auth, errors, OpenAPI."""
