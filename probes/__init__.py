"""Built-in probes of `sidequest doctor`, one module per probe, each a pluggy plugin."""
