"""Start the connector as Claude Desktop would and shake hands with it, using the official MCP SDK's client.

Desktop's failures at this step reach the owner as "Server disconnected" or tools that never
appear; here each is named: the program does not start, it exits before answering (with the
last lines of its stderr), it writes text that is not MCP to stdout (Desktop's "Unexpected
token"), it does not answer in time, or it exits when sent `server/discover` (newer Desktop
builds send it, and then cannot start the connector for Cowork and Code). A child that ends by
itself (at start, or on `server/discover`) is reported with its return code: `exit_code`, negative
for the signal that stopped it on POSIX.

This is the only module that imports `mcp` (the SDK pulls in pydantic, starlette and more), and
only inside `shake_hands`: nothing is imported until the `connector-launch` probe runs.

The child is always stopped: the SDK's stdio client closes its stdin, then kills its process
group, within bounded waits, whatever ends the handshake; a child still silent when the timeout
ends is killed at once (the SDK would first wait 2 s for it to exit by itself). A doctor whose
run budget ends while the handshake is still going exits with this thread still inside it, so
every child is also kept in `_LIVE` and killed and reaped from an `atexit` hook.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import tempfile
import threading
import time
from typing import Any

from doctor.claude_desktop.launch import Launch
from doctor.values import Value

STDERR_TAIL_BYTES = 8 * 1024
STDERR_TAIL_LINES = 8
DISCOVER_WAIT_S = 3.0  # how long a server/discover answer is waited for after the handshake
EXIT_CODE_WAIT_S = 1.0  # how long an ended child's return code is waited for (the event loop reaps it)
CLIENT_NAME = "sidequest-doctor"

# Outcome kinds.
OK = "ok"
NOT_FOUND = "command_not_found"
SPAWN_FAILED = "spawn_failed"
EXITED = "exited_at_start"
NOISE = "stdout_not_json"
NO_ANSWER = "no_answer"
PROTOCOL_ERROR = "handshake_error"
DIED_ON_DISCOVER = "exited_on_discover"


class Handshake(Value):
    """What happened when the connector was started: plain data, no secret values (stderr is redacted later)."""

    __slots__ = (
        "kind", "started_ms", "tools", "server_name", "server_version", "protocol_version",
        "stderr_tail", "noise_lines", "discover", "error", "pid", "reaped", "exit_code",
    )  # fmt: skip

    def __init__(
        self,
        kind: str,
        started_ms: float | None = None,
        tools: tuple[str, ...] = (),
        server_name: str | None = None,
        server_version: str | None = None,
        protocol_version: str | None = None,
        stderr_tail: tuple[str, ...] = (),
        noise_lines: int = 0,
        discover: str | None = None,
        error: str | None = None,
        pid: int | None = None,
        reaped: bool | None = None,
        exit_code: int | None = None,
    ) -> None:
        self.kind = kind
        self.started_ms = started_ms  # spawn to the end of initialize
        self.tools = tools  # tool names from tools/list
        self.server_name = server_name
        self.server_version = server_version
        self.protocol_version = protocol_version
        self.stderr_tail = stderr_tail  # last lines the connector wrote to stderr (NOT redacted here)
        self.noise_lines = noise_lines  # stdout lines that were not JSON-RPC
        self.discover = discover  # "answered", "refused" (a JSON-RPC error), "no_answer", "exited"
        self.error = error  # one line from the SDK, for the details
        self.pid = pid
        self.reaped = reaped  # the child is gone after the handshake
        # How the child ended when it ended by itself before it was stopped (its return code: negative = the
        # signal that stopped it, on POSIX); None while it ran until the doctor stopped it, or when not known.
        self.exit_code = exit_code


# -- children that must not outlive the doctor -------------------------------------------------

_LIVE: dict[int, Any] = {}  # pid -> psutil.Process
_LIVE_LOCK = threading.Condition()
_HOOKED = False
_CLOSING = threading.Event()  # set by the exit hook: every child found from then on is killed at once
# One handshake at a time in a process: the SDK keeps its child to itself, and the watcher knows it as the one
# new child leading its own session, which holds only while no other handshake is starting one. The probe starts
# its copies one after another anyway; this keeps callers that run doctors side by side in threads (the examples
# script does) from stopping each other's connector.
_ONE_AT_A_TIME = threading.Lock()
_RUNNING = 0  # handshakes under way; the exit hook waits for them to unwind after killing their children
EXIT_WAIT_S = 5.0


def _remember(process: Any) -> None:
    global _HOOKED
    with _LIVE_LOCK:
        _LIVE[process.pid] = process
        if not _HOOKED:
            atexit.register(kill_leftovers)
            _HOOKED = True


def _forget(pid: int) -> None:
    with _LIVE_LOCK:
        _LIVE.pop(pid, None)


def kill_leftovers() -> None:
    """Kill and reap every connector still running (its whole process group); called at exit."""
    import psutil

    _CLOSING.set()
    with _LIVE_LOCK:
        left = list(_LIVE.values())
    for process in left:
        _kill_group(process)
    # A handshake thread still inside the SDK when the interpreter finalizes can abort the process
    # (its stack crosses pydantic-core); with its child dead it unwinds in moments, so wait for that.
    with _LIVE_LOCK:
        _LIVE_LOCK.wait_for(lambda: _RUNNING == 0, timeout=EXIT_WAIT_S)
        left = list(_LIVE.values())  # including children spawned while the hook ran (killed by the watcher)
        _LIVE.clear()
    for process in left:
        _kill_group(process)
        try:
            process.wait(timeout=0.5)  # reaps our own child if the SDK's watcher has not
        except (psutil.Error, ChildProcessError):
            pass


def _kill_group(process: Any) -> None:
    import psutil

    try:
        if not process.is_running():  # also false when the pid was reused by another program
            return
        try:
            os.killpg(process.pid, 9)  # the SDK starts the server in its own session: pgid == pid
        except (AttributeError, OSError):
            process.kill()
    except psutil.Error:
        pass


def _new_children(before: set[int]) -> list[Any]:
    import psutil

    try:
        children = psutil.Process().children()
    except psutil.Error:
        return []
    found = []
    for child in children:
        if child.pid in before:
            continue
        try:
            # The SDK starts the server in a new session; other probes' helpers are not session leaders.
            if hasattr(os, "getsid") and os.getsid(child.pid) != child.pid:
                continue
        except OSError:
            continue
        found.append(child)
    return found


class _ChildWatcher(threading.Thread):
    """Finds the child the SDK spawns (the SDK does not expose it) and keeps it in `_LIVE` for the exit hook."""

    def __init__(self, before: set[int], found: dict[str, Any]) -> None:
        super().__init__(name="connector-launch-child", daemon=True)
        self._before = before
        self._found = found
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            if "process" not in self._found:
                for process in _new_children(self._before):
                    _remember(process)
                    self._found["process"] = process
                    break
            if _CLOSING.is_set() and "process" in self._found:
                _kill_group(self._found["process"])  # the doctor is exiting: the handshake must end now
                return
            self._stop_event.wait(0.005)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=1.0)
        if "process" not in self._found:  # a last look: it may have started just before the stop
            for process in _new_children(self._before):
                _remember(process)
                self._found["process"] = process
                break


def _leaf(exc: BaseException) -> BaseException:
    """The first real exception inside (nested) exception groups."""
    while hasattr(exc, "exceptions") and getattr(exc, "exceptions", None):
        exc = exc.exceptions[0]
    return exc


def _ended(pid: int) -> bool:
    """The process `pid` has ended: a zombie not yet reaped, or gone."""
    import psutil

    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.Error:
        return True


@contextlib.asynccontextmanager
async def _watched(transport: Any, seen: dict[str, Any]) -> Any:
    """The SDK's stdio transport, noting how the process it spawned ended when it ended by itself.

    The SDK keeps its process object to itself (a local of `stdio_client`); it is read from the
    transport's suspended frame. Should a later SDK rename it, the exit code is simply not known.
    """
    import anyio

    async with transport as streams:
        frame = getattr(getattr(transport, "gen", None), "ag_frame", None)
        process = frame.f_locals.get("process") if frame is not None else None
        if not hasattr(process, "returncode") or not isinstance(getattr(process, "pid", None), int):
            process = None
        if process is not None:
            seen["spawned"] = process
        closed = False  # the server's side ended the connection (an error, not our timeout)
        try:
            yield streams
        except anyio.get_cancelled_exc_class():
            deadline = seen.get("deadline")
            if deadline is not None and deadline.cancel_called:
                # Silent until the timeout: kill it now. The SDK would close its stdin and then wait 2 s
                # for an exit a hung server does not make, before killing it anyway.
                seen["stopped_at_deadline"] = True
                _stop_now(seen.get("process"), process)
            raise
        except BaseException:
            closed = True
            raise
        finally:
            # Before the SDK stops it: a child that has ended, or is ending after closing its side, did so by
            # itself. Its return code arrives once it has exited and the event loop has reaped it, in moments.
            closed = closed or bool(seen.get("server_closed"))
            by_itself = not seen.get("stopped_at_deadline")
            if process is not None and by_itself and (closed or process.returncode is not None or _ended(process.pid)):
                with anyio.CancelScope(shield=True), anyio.move_on_after(EXIT_CODE_WAIT_S):
                    while process.returncode is None:
                        await anyio.sleep(0.005)
                seen["exit_code"] = process.returncode


def _stop_now(found: Any, spawned: Any) -> None:
    """Kill the child: its process group when the watcher has found it, else the SDK's own process."""
    if found is not None:
        _kill_group(found)
    elif spawned is not None:
        with contextlib.suppress(OSError):
            spawned.kill()


def _gone(process: Any) -> bool:
    import psutil

    try:
        return not process.is_running() or process.status() == psutil.STATUS_ZOMBIE
    except psutil.Error:
        return True


# -- the handshake ----------------------------------------------------------------------------------


def shake_hands(launch: Launch, timeout: float) -> Handshake:
    """Start `launch`, complete `initialize` and `tools/list`, send `server/discover`; stop the child.

    `timeout` bounds the wait for answers; stopping the child adds the SDK's bounded shutdown.
    """
    if launch.program is None:
        return Handshake(NOT_FOUND)
    if _CLOSING.is_set():  # the doctor is exiting: start nothing more
        return Handshake(NO_ANSWER, error="not started: the doctor was exiting")
    import logging

    import anyio

    # The SDK logs parse errors with the offending line; with no handler Python would print it to stderr.
    logging.getLogger("mcp").addHandler(logging.NullHandler())
    logging.getLogger("mcp").propagate = False
    global _RUNNING
    if not _ONE_AT_A_TIME.acquire(timeout=timeout):
        return Handshake(NO_ANSWER, error="not started: another start of a connector in this process did not end")
    if _CLOSING.is_set():  # the exit hook ran while this start waited its turn
        _ONE_AT_A_TIME.release()
        return Handshake(NO_ANSWER, error="not started: the doctor was exiting")
    with _LIVE_LOCK:
        _RUNNING += 1
    try:
        with tempfile.TemporaryFile() as errlog:
            outcome = anyio.run(_shake, launch, timeout, errlog)
            return outcome._replace(stderr_tail=_tail(errlog))
    finally:
        with _LIVE_LOCK:
            _RUNNING -= 1
            _LIVE_LOCK.notify_all()
        _ONE_AT_A_TIME.release()


async def _shake(launch: Launch, timeout: float, errlog: Any) -> Handshake:
    import anyio
    import psutil
    from mcp import Client, Implementation, StdioServerParameters
    from mcp.client.stdio import stdio_client
    from mcp_types.version import LATEST_MODERN_VERSION

    import doctor

    noise: list[int] = []
    child: dict[str, Any] = {}
    facts: dict[str, Any] = {}

    async def on_message(message: Any) -> None:
        if isinstance(message, Exception):
            noise.append(1)
        await anyio.lowlevel.checkpoint()

    params = StdioServerParameters(command=launch.program, args=list(launch.args), env=launch.env, cwd=launch.cwd)
    client = Client(
        _watched(stdio_client(params, errlog=errlog), child),
        mode="legacy",
        message_handler=on_message,
        client_info=Implementation(name=CLIENT_NAME, version=doctor.__version__),
        cache=None,
    )
    watcher = _ChildWatcher({p.pid for p in psutil.Process().children()}, child)  # before the spawn
    started = time.monotonic()
    kind, error = OK, None
    watcher.start()
    try:
        with anyio.move_on_after(timeout) as waited:
            child["deadline"] = waited
            await _converse(client, child, facts, started, LATEST_MODERN_VERSION)
        if waited.cancelled_caught:
            kind = NO_ANSWER if "tools" not in facts else OK
            if "tools" in facts and facts.get("discover") is None:
                facts["discover"] = "no_answer"
    except Exception as raised:  # anyio task groups wrap what the SDK raises in exception groups
        spawned = "started_ms" in facts or "process" in child or "spawned" in child
        kind, error = _failure(_leaf(raised), spawned)
    finally:
        watcher.stop()
    if kind == OK and facts.get("discover") == "exited":
        kind = DIED_ON_DISCOVER
    if noise and kind in (OK, NO_ANSWER, EXITED, PROTOCOL_ERROR):
        kind = NOISE
    pid, reaped = _child_outcome(child)
    return Handshake(
        kind,
        **{name: facts.get(name) for name in _ANSWERED},
        tools=facts.get("tools", ()),
        noise_lines=len(noise),
        error=error,
        pid=pid,
        reaped=reaped,
        exit_code=child.get("exit_code"),
    )


# What the conversation learns, under the names Handshake gives them.
_ANSWERED = ("started_ms", "server_name", "server_version", "protocol_version", "discover")


async def _converse(client: Any, child: dict[str, Any], facts: dict[str, Any], started: float, version: str) -> None:
    """initialize, tools/list and server/discover on `client`, noting each answer in `facts` as it comes."""
    async with client:
        facts["started_ms"] = (time.monotonic() - started) * 1000
        info = client.server_info
        if info is not None:
            facts["server_name"], facts["server_version"] = info.name, info.version
        facts["protocol_version"] = client.protocol_version
        listing = await client.list_tools()
        facts["tools"] = tuple(tool.name for tool in listing.tools)
        facts["discover"] = await _send_discover(client, child, version)


def _failure(exc: BaseException, spawned: bool) -> tuple[str, str]:
    """(kind, one-line error) for what ended a handshake early."""
    from mcp.shared.exceptions import MCPError

    if isinstance(exc, OSError) and not spawned:
        return SPAWN_FAILED, f"{type(exc).__name__}: {exc.strerror or exc}"
    if isinstance(exc, MCPError):
        return EXITED, str(exc)
    text = str(exc).strip()  # a reply the SDK could not use: a protocol problem, named as such
    return PROTOCOL_ERROR, f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"


def _child_outcome(child: dict[str, Any]) -> tuple[int | None, bool | None]:
    """(pid, gone afterwards) of the connector this handshake started; (None, None) when none started.

    The watcher's find, else the SDK's own process object: a child that ended before the watcher's
    first look (a connector exiting at once, on a loaded machine) was already reaped by the event loop.
    """
    process = child.get("process")
    spawned = child.get("spawned")
    if process is None and spawned is not None:
        if spawned.returncode is not None:
            return spawned.pid, True
        import psutil

        try:
            process = psutil.Process(spawned.pid)  # not reaped yet, so the pid is still this child's
        except psutil.Error:
            return spawned.pid, True
        _remember(process)
    if process is None:
        return None, None
    return process.pid, _reap(process)


def _reap(process: Any) -> bool:
    """Whether the child is gone; one the SDK gave up on is killed now rather than left running."""
    reaped = _gone(process)
    if not reaped:
        _kill_group(process)
        reaped = _gone(process)
    if reaped:
        _forget(process.pid)
    return reaped


async def _send_discover(client: Any, child: dict[str, Any], version: str) -> str:
    """Send `server/discover` on the open session as Desktop's era probe does; say how the server took it."""
    import anyio
    from mcp.shared.exceptions import MCPError
    from mcp_types import CONNECTION_CLOSED

    answer = "no_answer"
    with anyio.move_on_after(DISCOVER_WAIT_S):
        try:
            await client.session.send_discover(version)
            answer = "answered"
        except MCPError as exc:
            answer = "exited" if exc.code == CONNECTION_CLOSED else "refused"
            child["server_closed"] = answer == "exited"
    if answer != "exited":
        # Still there? A server that exits on the request may answer nothing first.
        process = child.get("process")
        with anyio.move_on_after(1.0):
            while process is not None and not _gone(process):
                if answer != "no_answer":
                    break
                await anyio.sleep(0.02)
        if process is not None and _gone(process):
            answer = "exited"
            child["server_closed"] = True
    return answer


def _tail(errlog: Any) -> tuple[str, ...]:
    try:
        errlog.seek(0, os.SEEK_END)
        size = errlog.tell()
        errlog.seek(max(0, size - STDERR_TAIL_BYTES))
        text = errlog.read().decode("utf-8", errors="replace")
    except OSError:
        return ()
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    if size > STDERR_TAIL_BYTES and lines:
        lines = lines[1:]  # the first line read may be cut
    return tuple(lines[-STDERR_TAIL_LINES:])
