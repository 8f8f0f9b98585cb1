"""The built-in engine: serves a Hugging Face causal LM with torch + transformers behind an
OpenAI-compatible HTTP API, batching concurrent requests (continuous batching in a scheduler thread).

Run it as `python -m tide.engines.builtin --model-dir DIR --port 0 --served-model-name NAME`.
"""
