"""A fake SideQuest connector written with the MCP SDK's server API, plus the broken ways real ones fail.

Claude Desktop starts the connector from its config entry and talks MCP over stdin/stdout; the
`connector-launch` probe does the same. This script is that connector for the tests, started as
`python fake_connector.py [VARIANT]` (or with FAKE_CONNECTOR_VARIANT in its env, which is how a
Claude config entry picks one):

- `healthy`     a working server: two tools, name "fake-qb-distributor", version "9.8.7"
- `crash`       writes a few lines to stderr (one of them the value of $FAKE_CONNECTOR_ECHO's setting,
                QB_REFRESH_TOKEN by default) and exits 3
- `noise`       prints a banner to stdout (not JSON), then serves normally
- `killed`      writes one line to stderr, then is stopped by a signal (SIGKILL, as the system's
                out-of-memory killer does; POSIX only)
- `hang`        starts and never reads or answers anything
- `discover`    serves normally, but exits the moment it is sent `server/discover`

Arguments `--tag=ANYTHING` are ignored: a test uses one to find its process by command line.
Every variant first writes its process id to $FAKE_CONNECTOR_PID_FILE when that is set, so a test
can check the process is gone afterwards; and its working directory to $FAKE_CONNECTOR_CWD_FILE,
and its environment's keys to $FAKE_CONNECTOR_ENV_FILE (keys only, one a line).
"""

from __future__ import annotations

import os
import sys
import time

SERVER_NAME = "fake-qb-distributor"
SERVER_VERSION = "9.8.7"
TOOL_NAMES = ("check_token", "list_customers")
VARIANTS = ("healthy", "crash", "killed", "noise", "hang", "discover")


def _record_start() -> None:
    for key, value in (
        ("FAKE_CONNECTOR_PID_FILE", str(os.getpid())),
        ("FAKE_CONNECTOR_CWD_FILE", os.getcwd()),
        ("FAKE_CONNECTOR_ENV_FILE", "\n".join(sorted(os.environ))),
    ):
        path = os.environ.get(key)
        if path:
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(value)


def _server():
    from mcp.server.mcpserver import MCPServer

    server = MCPServer(SERVER_NAME, version=SERVER_VERSION)

    @server.tool()
    def check_token(realm_id: str) -> str:
        """Say whether the QuickBooks connection works."""
        return f"ok for {realm_id}"

    @server.tool()
    def list_customers() -> list[str]:
        """List the company's customers."""
        return ["Acme"]

    return server


class _DiesOnDiscover:
    """Standard input that ends the process when a `server/discover` request arrives (as some servers do)."""

    def __init__(self, raw) -> None:
        self._raw = raw

    def readline(self, *args) -> str:
        line = self._raw.readline()
        if '"server/discover"' in line:
            sys.stderr.write("unknown method server/discover; exiting\n")
            sys.stderr.flush()
            os._exit(4)
        return line

    def __getattr__(self, name):
        return getattr(self._raw, name)


def _serve(stdin=None) -> None:
    import anyio
    from mcp.server.stdio import stdio_server

    server = _server()

    async def main() -> None:
        wrapped = anyio.wrap_file(stdin) if stdin is not None else None
        async with stdio_server(stdin=wrapped) as (read_stream, write_stream):
            low = server._lowlevel_server
            await low.run(read_stream, write_stream, low.create_initialization_options())

    anyio.run(main)


def main(argv: list[str]) -> int:
    words = [arg for arg in argv[1:] if not arg.startswith("--tag=")]  # a tag only marks the process for tests
    variant = words[0] if words else os.environ.get("FAKE_CONNECTOR_VARIANT", "healthy")
    if variant not in VARIANTS:
        sys.stderr.write(f"unknown variant {variant!r}\n")
        return 2
    _record_start()
    if variant == "crash":
        sys.stderr.write("Starting SideQuest connector\n")
        echoed = os.environ.get("FAKE_CONNECTOR_ECHO", "QB_REFRESH_TOKEN")  # the setting it prints, as some do
        sys.stderr.write(f"Loaded {echoed} {os.environ.get(echoed, '')}\n")
        sys.stderr.write("Error: QB_CLIENT_ID is not set\n")
        sys.stderr.flush()
        return 3
    if variant == "killed":
        import signal

        sys.stderr.write("Loading the company's data\n")
        sys.stderr.flush()
        os.kill(os.getpid(), signal.SIGKILL)
    if variant == "hang":
        while True:
            time.sleep(3600)
    if variant == "noise":
        sys.stdout.write("Starting SideQuest connector on stdio...\n")
        sys.stdout.flush()
    if variant == "discover":
        import io

        _serve(_DiesOnDiscover(io.TextIOWrapper(os.fdopen(0, "rb", closefd=False), encoding="utf-8")))
        return 0
    _serve()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
