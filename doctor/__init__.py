"""SideQuest doctor: diagnose and repair the QuickBooks Online token chain of the SideQuest connector.

The package holds the framework (plugin manager, runner, redaction, renderers, CLI) and the
domain modules the probes share (Intuit OAuth client, locked .env token store, Claude Desktop
config). Imports here stay light: the offline path must not pull in httpx or Jinja2.
"""

__version__ = "0.1.0"
