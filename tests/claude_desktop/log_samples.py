"""Claude Desktop log lines as Desktop writes them (shapes taken from users' published logs, 2025-2026).

Two header orders exist: `TIME [server] [level] message` (2026 builds) and `TIME [level] [server]
message` (2025). `Using MCP server command` records continue over several lines in Node's
inspect format; on Windows its strings double every backslash.
"""

from __future__ import annotations

from pathlib import Path

# A tool result as Desktop logs it: QuickBooks data that must never leave the file.
SECRET_BALANCE = "48213.77"
SECRET_CUSTOMER = "Hollis Feed & Grain Cooperative"
TOOL_RESULT = (
    'Message from server: {"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":'
    f'"{{\\"Customer\\":\\"{SECRET_CUSTOMER}\\",\\"Balance\\":{SECRET_BALANCE},\\"AcctNum\\":\\"7730-2291\\"}}"}}]}}}}'
)
TOOL_CALL = (
    'Message from client: {"method":"tools/call","params":{"name":"get_customer","arguments":'
    f'{{"name":"{SECRET_CUSTOMER}"}}}},"jsonrpc":"2.0","id":7}}'
)


def line(stamp: str, server: str, level: str, message: str, *, old_order: bool = False) -> str:
    head = f"[{level}] [{server}]" if old_order else f"[{server}] [{level}]"
    return f"{stamp} {head} {message} {{ metadata: undefined }}\n"


def command_record(stamp: str, server: str, command: str, paths: list[str], *, with_args: bool = True) -> str:
    """The multi-line record Desktop writes before it spawns a server."""
    quoted = ",\n".join(f"      '{p}'" for p in paths)
    args = "    args: [ 'mcp-remote', 'https://example.invalid/mcp', [length]: 2 ],\n" if with_args else ""
    joiner = "with args and path" if with_args else "with path"
    return (
        f"{stamp} [{server}] [info] Using MCP server command: {command} {joiner}: {{\n"
        f"  metadata: {{\n{args}    paths: [\n{quoted},\n      [length]: {len(paths)}\n    ]\n  }}\n}} %o\n"
    )


def healthy_session(server: str = "qb-distributor", day: str = "2026-11-20") -> str:
    return (
        line(f"{day}T09:55:02.449Z", server, "info", "Initializing server...")
        + command_record(f"{day}T09:55:02.465Z", server, "/usr/local/bin/uvx", ["/usr/local/bin", "/usr/bin", "/bin"])
        + line(f"{day}T09:55:02.671Z", server, "info", "Server started and connected successfully")
        + line(f"{day}T09:55:02.719Z", server, "info", 'Message from client: {"method":"initialize","id":0}')
        + line(f"{day}T09:55:03.102Z", server, "info", 'Message from server: {"jsonrpc":"2.0","id":0,"result":{}}')
        + line(f"{day}T09:56:10.000Z", server, "info", TOOL_CALL)
        + line(f"{day}T09:56:11.500Z", server, "info", TOOL_RESULT)
    )


def enoent_session(server: str = "qb-distributor", day: str = "2026-11-21") -> str:
    windows_paths = ["C:\\\\Program Files\\\\nodejs", "C:\\\\Users\\\\o\\\\AppData\\\\Roaming\\\\npm", "C:\\\\WINDOWS"]
    return (
        line(f"{day}T08:00:00.100Z", server, "info", "Initializing server...")
        + command_record(f"{day}T08:00:00.120Z", server, "npx", windows_paths, with_args=False)
        + line(f"{day}T08:00:00.130Z", server, "info", "Server started and connected successfully")
        + line(f"{day}T08:00:00.140Z", server, "error", "spawn npx ENOENT")
        + line(f"{day}T08:00:00.150Z", server, "info", "Server transport closed unexpectedly, this is likely due to "
               "the process exiting early. If you are developing this MCP server you can add output to stderr")
        + line(f"{day}T08:00:00.151Z", server, "error", "Server disconnected. For troubleshooting guidance, please "
               "visit our [debugging documentation](https://modelcontextprotocol.io/docs/tools/debugging)")
    )  # fmt: skip


def crash_session(server: str = "qb-distributor", day: str = "2026-11-22", *, old_order: bool = True) -> str:
    """2025's header order; the server writes to stderr (un-timestamped lines) and exits."""
    return (
        line(f"{day}T18:45:41.100Z", server, "info", "Initializing server...", old_order=old_order)
        + line(f"{day}T18:45:41.233Z", server, "info", 'Message from client: {"id":0}', old_order=old_order)
        + "Traceback (most recent call last):\nKeyError: 'QB_REFRESH_TOKEN'\n"
        + line(f"{day}T18:45:41.395Z", server, "info", "Server transport closed", old_order=old_order)
        + line(f"{day}T18:45:41.396Z", server, "info", "Server transport closed unexpectedly, this is likely due to "
               "the process exiting early.", old_order=old_order)
        + line(f"{day}T18:45:41.396Z", server, "error", "Server disconnected.", old_order=old_order)
    )  # fmt: skip


def timeout_session(server: str = "qb-distributor", day: str = "2026-11-23") -> str:
    return (
        line(f"{day}T05:51:44.599Z", server, "info", "Initializing server...")
        + line(f"{day}T05:51:44.610Z", server, "info", 'Message from server: {"jsonrpc":"2.0","id":0,"result":{}}')
        + line(f"{day}T05:52:44.607Z", server, "info", 'Message from client: {"jsonrpc":"2.0","method":'
               '"notifications/cancelled","params":{"requestId":3,"reason":"Error: MCP error -32001: '
               'Request timed out"}}')
    )  # fmt: skip


def write_log(folder: Path, name: str, *parts: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    with open(path, "a", encoding="utf-8", newline="") as handle:
        handle.write("".join(parts))
    return path
