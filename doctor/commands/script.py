"""The `sidequest` console script (pyproject.toml: `sidequest = "doctor.commands.script:entry"`).

A sidequest process of its own takes a setting no importer of `doctor` should get, then runs the
CLI (doctor/commands/cli.py). This module imports the CLI only after the setting is made, so it
covers the CLI's own imports, click's included. Nothing in `doctor/` or `probes/` imports it.
"""

from __future__ import annotations

import gc

# Start-up trick: the cyclic garbage collector runs once 50,000 new objects are alive instead of
# 700. A run makes few cycles, but its imports make about 30,000 objects that live as long as the
# process (modules, functions, classes), and at 700 the collector walks them again and again as
# they arrive: 13 M instructions (callgrind), about 6 ms of an offline run's 55. Collections still
# come, every 50,000 objects, so the memory of a long live run stays bounded.
GC_THRESHOLD = 50_000


def process_settings() -> None:
    """What a sidequest process of its own sets before it imports the CLI (bench/startup calls this too)."""
    gc.set_threshold(GC_THRESHOLD)


def entry() -> None:
    """The `sidequest` command: the process's settings, then the CLI's own entry (`cli.entry`: the
    imports it skips, main(), and the exit without the interpreter's teardown)."""
    process_settings()
    from doctor.commands.cli import entry as run_cli

    run_cli()
