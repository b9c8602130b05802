"""The platforms' own schedulers, as `sidequest keepalive` uses them: install, find, remove one job.

Why each is driven through its command-line tool (launchctl, schtasks, systemctl, crontab) and
never by writing the scheduler's private state: those tools are what the platform supports for
a normal user without admin rights, and tests replace them with fakes on PATH
(tests/support/fake_schedulers/). Each scheduler installs exactly one job, named so that it is
ours (a label, a task name, two unit files, one marked crontab line), and removes only that.

Schedule: the POSIX schedulers run the job at 12:00 local time on days 1, 1+N, 1+2N, ... of each
month, so two runs are never more than N days apart (launchd and systemd also run a missed one
when the computer wakes up); Task Scheduler runs it every N days and, when the computer was off
at that time, as soon as it can.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Sequence

from doctor.store.atomic_file import remove_quietly, replace_atomically
from doctor.values import Value

JOB_NAME = "sidequest-keepalive"
LAUNCHD_LABEL = "com.sidequestautomation.keepalive"
TASK_NAME = "SideQuest keepalive"
CRON_MARKER = b"# " + JOB_NAME.encode()
RUN_HOUR = 12
TOOL_TIMEOUT = 30.0
DESCRIPTION = "SideQuest keep-alive: refreshes the QuickBooks connection so it never reaches Intuit's 100-day limit"


class SchedulerError(Exception):
    """A scheduler tool was missing, failed or timed out; the message says which and why."""


class Job(Value):
    """The keep-alive job: `argv` (the absolute sidequest program and its arguments), every N days."""

    __slots__ = ("argv", "every_days")

    def __init__(self, argv: tuple[str, ...], every_days: int) -> None:
        self.argv = argv
        self.every_days = every_days


class Found(Value):
    """A keep-alive job a scheduler holds now.

    `active` is whether the scheduler will run it (loaded, enabled); `argv` and `every_days`
    are what it runs and how often, as read back (None where they could not be read).
    """

    __slots__ = ("scheduler", "where", "files", "active", "argv", "every_days")

    def __init__(
        self,
        scheduler: str,
        where: str,
        files: tuple[str, ...],
        active: bool,
        argv: tuple[str, ...] | None,
        every_days: int | None,
    ) -> None:
        self.scheduler = scheduler
        self.where = where
        self.files = files
        self.active = active
        self.argv = argv
        self.every_days = every_days

    def runs(self, job: Job) -> bool:
        return self.argv == job.argv and self.every_days == job.every_days


def days_of_month(every_days: int) -> list[int]:
    return list(range(1, 32, every_days))


def describe_schedule(scheduler: str, every_days: int) -> str:
    if scheduler == "schtasks":
        return f"every {_days(every_days)} at {RUN_HOUR}:00; when the computer was off then, as soon as it is on again"
    if every_days == 1:
        when = f"every day at {RUN_HOUR}:00"
    else:
        listed = ", ".join(str(day) for day in days_of_month(every_days))
        when = f"at least every {_days(every_days)}: {RUN_HOUR}:00 on days {listed} of each month"
    if scheduler in ("launchd", "systemd"):
        return f"{when}; a run missed while the computer slept happens when it wakes"
    return f"{when}; cron skips a run while the computer is off or asleep"


def _days(count: int) -> str:
    return "1 day" if count == 1 else f"{count} days"


def run_tool(args: Sequence[str], *, input: bytes | None = None) -> subprocess.CompletedProcess:
    """Run a scheduler tool found on PATH; bytes in and out. SchedulerError when it cannot run."""
    program = shutil.which(args[0])
    if program is None:
        raise SchedulerError(f"`{args[0]}` was not found on this computer (PATH)")
    try:
        return subprocess.run(
            [program, *args[1:]],
            input=input,
            capture_output=True,
            timeout=TOOL_TIMEOUT,
            stdin=None if input is not None else subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        raise SchedulerError(f"`{args[0]}` did not finish within {TOOL_TIMEOUT:g} seconds") from None
    except OSError as exc:
        raise SchedulerError(f"`{args[0]}` could not be started: {exc.strerror or exc}") from None


def tool_says(result: subprocess.CompletedProcess) -> str:
    """The first line a tool printed, for an error message."""
    for stream in (result.stderr, result.stdout):
        text = (stream or b"").decode("utf-8", "replace").strip()
        if text:
            return text.splitlines()[0][:300]
    return f"exit code {result.returncode}"


def _checked(args: Sequence[str], *, input: bytes | None = None) -> subprocess.CompletedProcess:
    result = run_tool(args, input=input)
    if result.returncode != 0:
        raise SchedulerError(f"`{' '.join(args[:3])}` failed: {tool_says(result)}")
    return result


class Scheduler:
    name = ""
    title = ""

    def install(self, job: Job) -> Found:
        raise NotImplementedError

    def find(self) -> Found | None:
        raise NotImplementedError

    def remove(self) -> Found | None:
        """Remove our job; returns what was removed, None when there was nothing."""
        raise NotImplementedError


# ---------------------------------------------------------------------------------- launchd


class Launchd(Scheduler):
    """macOS: a LaunchAgent in ~/Library/LaunchAgents, loaded into the user's GUI domain."""

    name = "launchd"
    title = "macOS LaunchAgent"

    def __init__(self, home_folder: Path, uid: int) -> None:
        self.plist = home_folder / "Library" / "LaunchAgents" / f"{LAUNCHD_LABEL}.plist"
        self.domain = f"gui/{uid}"

    def plist_bytes(self, job: Job) -> bytes:
        import plistlib

        if job.every_days == 1:
            calendar: object = {"Hour": RUN_HOUR, "Minute": 0}
        else:
            calendar = [{"Day": day, "Hour": RUN_HOUR, "Minute": 0} for day in days_of_month(job.every_days)]
        data = {
            "Label": LAUNCHD_LABEL,
            "ProgramArguments": list(job.argv),
            "StartCalendarInterval": calendar,
            "ProcessType": "Background",
        }
        return plistlib.dumps(data, sort_keys=False)

    def _loaded(self) -> bool:
        result = run_tool(["launchctl", "print", f"{self.domain}/{LAUNCHD_LABEL}"])
        if result.returncode == 0:
            return True
        return run_tool(["launchctl", "list", LAUNCHD_LABEL]).returncode == 0

    def _unload(self) -> None:
        # bootout on macOS 10.10 and later; unload on older ones. Not loaded is fine either way.
        result = run_tool(["launchctl", "bootout", f"{self.domain}/{LAUNCHD_LABEL}"])
        if result.returncode != 0 and self.plist.exists():
            run_tool(["launchctl", "unload", str(self.plist)])

    def install(self, job: Job) -> Found:
        self.plist.parent.mkdir(parents=True, exist_ok=True)
        self._unload()
        replace_atomically(self.plist, self.plist_bytes(job), 0o644, prefix=f".{self.plist.name}.")
        result = run_tool(["launchctl", "bootstrap", self.domain, str(self.plist)])
        if result.returncode != 0:
            legacy = run_tool(["launchctl", "load", "-w", str(self.plist)])
            if legacy.returncode != 0:
                raise SchedulerError(f"launchctl could not load {self.plist}: {tool_says(result)}")
        return Found(self.name, str(self.plist), (str(self.plist),), True, job.argv, job.every_days)

    def find(self) -> Found | None:
        import plistlib

        try:
            data = plistlib.loads(self.plist.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValueError, plistlib.InvalidFileException):
            data = {}
        if not isinstance(data, dict):
            data = {}
        argv = data.get("ProgramArguments")
        every = _interval_of_calendar(data.get("StartCalendarInterval"))
        return Found(
            self.name,
            str(self.plist),
            (str(self.plist),),
            self._loaded(),
            tuple(argv) if isinstance(argv, list) and all(isinstance(a, str) for a in argv) else None,
            every,
        )

    def remove(self) -> Found | None:
        found = self.find()
        if found is None:
            return None
        self._unload()
        remove_quietly(self.plist)
        return found


def _interval_of_calendar(calendar: object) -> int | None:
    """N back from a StartCalendarInterval that `plist_bytes` wrote (daily, or days 1, 1+N, ...)."""
    if isinstance(calendar, dict) and "Day" not in calendar:
        return 1
    if isinstance(calendar, list) and len(calendar) >= 2 and all(isinstance(c, dict) for c in calendar):
        days = [c.get("Day") for c in calendar]
        if all(isinstance(d, int) for d in days) and days[0] == 1:
            return days[1] - days[0]
    return None


# ---------------------------------------------------------------------------------- schtasks


class Schtasks(Scheduler):
    """Windows: a task of the current user in Task Scheduler's root folder (no admin rights)."""

    name = "schtasks"
    title = "Windows scheduled task"

    def __init__(self, temp_folder: Path, today: str) -> None:
        self.temp_folder = temp_folder
        self.today = today  # YYYY-MM-DD, local: the first run is due that day at RUN_HOUR

    def task_xml(self, job: Job) -> str:
        from xml.sax.saxutils import escape

        command, arguments = job.argv[0], subprocess.list2cmdline(list(job.argv[1:]))
        return (
            '<?xml version="1.0" encoding="UTF-16"?>\n'
            '<Task version="1.2" xmlns="http://schemas.microsoft.com/windows/2004/02/mit/task">\n'
            "  <RegistrationInfo>\n"
            f"    <Description>{escape(DESCRIPTION)}. Every {job.every_days} days. "
            "Remove it with: sidequest keepalive off</Description>\n"
            f"    <URI>\\{escape(TASK_NAME)}</URI>\n"
            "  </RegistrationInfo>\n"
            "  <Triggers>\n"
            "    <CalendarTrigger>\n"
            f"      <StartBoundary>{self.today}T{RUN_HOUR:02d}:00:00</StartBoundary>\n"
            "      <Enabled>true</Enabled>\n"
            "      <ScheduleByDay>\n"
            f"        <DaysInterval>{job.every_days}</DaysInterval>\n"
            "      </ScheduleByDay>\n"
            "    </CalendarTrigger>\n"
            "  </Triggers>\n"
            "  <Principals>\n"
            '    <Principal id="Author">\n'
            "      <LogonType>InteractiveToken</LogonType>\n"
            "      <RunLevel>LeastPrivilege</RunLevel>\n"
            "    </Principal>\n"
            "  </Principals>\n"
            "  <Settings>\n"
            "    <MultipleInstancesPolicy>IgnoreNew</MultipleInstancesPolicy>\n"
            "    <DisallowStartIfOnBatteries>false</DisallowStartIfOnBatteries>\n"
            "    <StopIfGoingOnBatteries>false</StopIfGoingOnBatteries>\n"
            "    <StartWhenAvailable>true</StartWhenAvailable>\n"
            "    <ExecutionTimeLimit>PT10M</ExecutionTimeLimit>\n"
            "    <Enabled>true</Enabled>\n"
            "  </Settings>\n"
            '  <Actions Context="Author">\n'
            "    <Exec>\n"
            f"      <Command>{escape(command)}</Command>\n"
            f"      <Arguments>{escape(arguments)}</Arguments>\n"
            "    </Exec>\n"
            "  </Actions>\n"
            "</Task>\n"
        )

    def install(self, job: Job) -> Found:
        import tempfile

        # schtasks reads a task definition from a file; UTF-16 with a BOM is what it writes itself.
        descriptor, name = tempfile.mkstemp(prefix="sidequest-keepalive-", suffix=".xml", dir=self.temp_folder)
        try:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(self.task_xml(job).encode("utf-16"))
            _checked(["schtasks", "/Create", "/TN", TASK_NAME, "/XML", name, "/F"])
        finally:
            remove_quietly(Path(name))
        return Found(self.name, f"Task Scheduler, task {TASK_NAME!r}", (), True, job.argv, job.every_days)

    def find(self) -> Found | None:
        result = run_tool(["schtasks", "/Query", "/TN", TASK_NAME, "/XML"])
        if result.returncode != 0:
            return None
        argv, every, enabled = _read_task_xml(result.stdout)
        return Found(self.name, f"Task Scheduler, task {TASK_NAME!r}", (), enabled, argv, every)

    def remove(self) -> Found | None:
        found = self.find()
        if found is None:
            return None
        _checked(["schtasks", "/Delete", "/TN", TASK_NAME, "/F"])
        return found


def _decode_xml(raw: bytes) -> str:
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16")
    return raw.decode("utf-8", "replace")


def _read_task_xml(raw: bytes) -> tuple[tuple[str, ...] | None, int | None, bool]:
    """(argv, days interval, enabled) from a task's XML; None where it cannot be read."""
    import xml.etree.ElementTree as ElementTree

    text = _decode_xml(raw)
    # ElementTree refuses a str that declares an encoding; the text is decoded already.
    if text.startswith("<?xml"):
        text = text[text.index("?>") + 2 :]
    try:
        root = ElementTree.fromstring(text.strip())
    except ElementTree.ParseError:
        return None, None, False
    ns = {"t": "http://schemas.microsoft.com/windows/2004/02/mit/task"}
    command = root.findtext("t:Actions/t:Exec/t:Command", namespaces=ns)
    arguments = root.findtext("t:Actions/t:Exec/t:Arguments", namespaces=ns) or ""
    interval = root.findtext("t:Triggers/t:CalendarTrigger/t:ScheduleByDay/t:DaysInterval", namespaces=ns)
    enabled = (root.findtext("t:Settings/t:Enabled", namespaces=ns) or "true").strip() == "true"
    argv = (command, *_split_windows_arguments(arguments)) if command else None
    every = int(interval) if interval and interval.strip().isdigit() else None
    return argv, every, enabled


def _split_windows_arguments(text: str) -> list[str]:
    """Undo subprocess.list2cmdline (the MSVC rules: quotes, and backslashes before quotes)."""
    args: list[str] = []
    current: list[str] = []
    in_quotes = False
    has_arg = False
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            j = i
            while j < len(text) and text[j] == "\\":
                j += 1
            count = j - i
            if j < len(text) and text[j] == '"':
                current.append("\\" * (count // 2))
                if count % 2:
                    current.append('"')
                    i = j + 1
                else:
                    i = j
                has_arg = True
                continue
            current.append("\\" * count)
            has_arg = True
            i = j
            continue
        if ch == '"':
            in_quotes = not in_quotes
            has_arg = True
        elif ch in " \t" and not in_quotes:
            if has_arg:
                args.append("".join(current))
                current, has_arg = [], False
        else:
            current.append(ch)
            has_arg = True
        i += 1
    if has_arg:
        args.append("".join(current))
    return args


# ---------------------------------------------------------------------------------- systemd


class Systemd(Scheduler):
    """Linux with a systemd user manager: a oneshot service and a timer in ~/.config/systemd/user."""

    name = "systemd"
    title = "systemd user timer"

    def __init__(self, config_folder: Path) -> None:
        self.folder = config_folder / "systemd" / "user"
        self.service = self.folder / f"{JOB_NAME}.service"
        self.timer = self.folder / f"{JOB_NAME}.timer"

    @staticmethod
    def available() -> bool:
        """Whether `systemctl --user` reaches a user manager (not so in containers and over bare ssh)."""
        try:
            return run_tool(["systemctl", "--user", "show-environment"]).returncode == 0
        except SchedulerError:
            return False

    def service_text(self, job: Job) -> str:
        return (
            "[Unit]\n"
            f"Description={DESCRIPTION}\n"
            "\n"
            "[Service]\n"
            "Type=oneshot\n"
            f"ExecStart={' '.join(_systemd_quote(arg) for arg in job.argv)}\n"
        )

    def timer_text(self, job: Job) -> str:
        if job.every_days == 1:
            calendar = f"*-*-* {RUN_HOUR:02d}:00:00"
        else:
            calendar = f"*-*-01/{job.every_days} {RUN_HOUR:02d}:00:00"
        return (
            "[Unit]\n"
            f"Description={DESCRIPTION} (every {_days(job.every_days)})\n"
            "\n"
            "[Timer]\n"
            f"OnCalendar={calendar}\n"
            "Persistent=true\n"
            "RandomizedDelaySec=15min\n"
            "\n"
            "[Install]\n"
            "WantedBy=timers.target\n"
        )

    def _files(self) -> tuple[str, str]:
        return (str(self.timer), str(self.service))

    def install(self, job: Job) -> Found:
        self.folder.mkdir(parents=True, exist_ok=True)
        replace_atomically(self.service, self.service_text(job).encode(), 0o644, prefix=f".{self.service.name}.")
        replace_atomically(self.timer, self.timer_text(job).encode(), 0o644, prefix=f".{self.timer.name}.")
        _checked(["systemctl", "--user", "daemon-reload"])
        _checked(["systemctl", "--user", "enable", self.timer.name])
        # restart, not start: an `on` that changes the interval must reload a running timer.
        _checked(["systemctl", "--user", "restart", self.timer.name])
        return Found(self.name, str(self.timer), self._files(), True, job.argv, job.every_days)

    def find(self) -> Found | None:
        if not self.timer.exists() and not self.service.exists():
            return None
        argv: tuple[str, ...] | None = None
        every: int | None = None
        try:
            for line in self.service.read_text(encoding="utf-8").splitlines():
                if line.startswith("ExecStart="):
                    argv = tuple(shlex.split(line[len("ExecStart=") :].replace("%%", "%").replace("$$", "$")))
            for line in self.timer.read_text(encoding="utf-8").splitlines():
                if line.startswith("OnCalendar="):
                    day = line[len("OnCalendar=") :].split()[0].split("-")[-1]
                    every = 1 if day == "*" else int(day[3:]) if day.startswith("01/") and day[3:].isdigit() else None
        except (OSError, UnicodeDecodeError, ValueError):
            pass
        try:
            enabled = run_tool(["systemctl", "--user", "is-enabled", self.timer.name]).returncode == 0
            active = run_tool(["systemctl", "--user", "is-active", self.timer.name]).returncode == 0
        except SchedulerError:
            enabled = active = False
        return Found(self.name, str(self.timer), self._files(), enabled and active, argv, every)

    def remove(self) -> Found | None:
        found = self.find()
        if found is None:
            return None
        try:
            run_tool(["systemctl", "--user", "disable", "--now", self.timer.name])
        except SchedulerError:
            pass  # no user manager any more: the unit files are all that is left
        remove_quietly(self.timer)
        remove_quietly(self.service)
        try:
            run_tool(["systemctl", "--user", "daemon-reload"])
        except SchedulerError:
            pass
        return found


def _systemd_quote(arg: str) -> str:
    # systemd splits ExecStart like a shell with C escapes, and expands % specifiers and $VARS.
    escaped = arg.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%").replace("$", "$$")
    return f'"{escaped}"'


# ---------------------------------------------------------------------------------- cron


class Cron(Scheduler):
    """Any other Unix: one line in the user's crontab, marked `# sidequest-keepalive`.

    Every other line of the crontab is kept byte for byte: the table is read with `crontab -l`
    and written back with `crontab -` with only our line taken out or put in.
    """

    name = "cron"
    title = "user crontab"
    where = "the user's crontab (crontab -l)"

    def line(self, job: Job) -> bytes:
        day = "*" if job.every_days == 1 else f"*/{job.every_days}"
        command = " ".join(shlex.quote(arg) for arg in job.argv).replace("%", "\\%")  # % is a newline to cron
        return f"0 {RUN_HOUR} {day} * * {command} >/dev/null 2>&1 ".encode() + CRON_MARKER + b"\n"

    def _read(self) -> bytes:
        result = run_tool(["crontab", "-l"])
        if result.returncode == 0:
            return result.stdout
        if b"no crontab" in (result.stderr + result.stdout).lower():
            return b""
        raise SchedulerError(f"`crontab -l` failed: {tool_says(result)}")

    def _write(self, table: bytes) -> None:
        if table.strip():
            _checked(["crontab", "-"], input=table)
        else:
            result = run_tool(["crontab", "-r"])
            if result.returncode != 0 and b"no crontab" not in (result.stderr + result.stdout).lower():
                raise SchedulerError(f"`crontab -r` failed: {tool_says(result)}")

    @staticmethod
    def _ours(line: bytes) -> bool:
        return line.rstrip(b"\r\n").rstrip().endswith(CRON_MARKER)

    def _without_ours(self, table: bytes) -> tuple[bytes, list[bytes]]:
        lines = table.splitlines(keepends=True)
        return b"".join(line for line in lines if not self._ours(line)), [line for line in lines if self._ours(line)]

    def install(self, job: Job) -> Found:
        table = self._read()
        rest, ours = self._without_ours(table)
        wanted = self.line(job)
        if ours == [wanted]:
            return Found(self.name, self.where, (), True, job.argv, job.every_days)
        if rest and not rest.endswith(b"\n"):
            rest += b"\n"
        self._write(rest + wanted)
        return Found(self.name, self.where, (), True, job.argv, job.every_days)

    def find(self) -> Found | None:
        _, ours = self._without_ours(self._read())
        if not ours:
            return None
        return Found(self.name, self.where, (), True, *self._parse(ours[-1]))

    def _parse(self, line: bytes) -> tuple[tuple[str, ...] | None, int | None]:
        text = line.decode("utf-8", "replace").rstrip("\r\n")
        fields = text.split(None, 5)
        if len(fields) < 6:
            return None, None
        day = fields[2]
        every = 1 if day == "*" else int(day[2:]) if day.startswith("*/") and day[2:].isdigit() else None
        command = fields[5].replace("\\%", "%")
        command = command[: command.rfind(" >/dev/null")] if " >/dev/null" in command else command
        try:
            return tuple(shlex.split(command)), every
        except ValueError:
            return None, every

    def remove(self) -> Found | None:
        table = self._read()
        rest, ours = self._without_ours(table)
        if not ours:
            return None
        found = Found(self.name, self.where, (), True, *self._parse(ours[-1]))
        self._write(rest)
        return found
