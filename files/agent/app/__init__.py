"""Reference LLM agent service deployed by the agentops.deploy collection."""

__version__ = "1.0.0"
