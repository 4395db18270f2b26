"""crawlfleet: what every role shares — configuration, the store, the broker
topology, the task model, the CLI, and the SDK spider processes import."""

__version__ = "0.1.0"
