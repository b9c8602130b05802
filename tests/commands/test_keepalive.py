"""`sidequest keepalive on|off|status` end to end: the real CLI in a subprocess, the platform chosen
with SIDEQUEST_PLATFORM, and fake launchctl / schtasks / systemctl / crontab on PATH that record
their arguments and keep state (tests/support/fake_schedulers). The files handed to each scheduler
(LaunchAgent plist, task XML, systemd units, crontab line) are checked byte for byte.
"""

from __future__ import annotations

import os
import plistlib
import re
import shutil
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from doctor.store.keepalive_record import read_record
from doctor.store.run_log import record_run
from tests.support import fake_schedulers
from tests.support.chain_support import metadata, stamp
from tests.support.homes import CLIENT_ID, CLIENT_SECRET, REALM_ID, cli_env, configured_values, run_cli, write_env

PYTHON = str(Path(sys.executable).absolute())
LABEL = "com.sidequestautomation.keepalive"
TASK = "SideQuest keepalive"


class World:
    """A user's computer: a home folder, a connector home, the fake schedulers and their state."""

    def __init__(self, tmp_path: Path, platform: str, **extra: str) -> None:
        self.user = tmp_path / "user"
        self.user.mkdir()
        self.home = tmp_path / "connector"
        self.state = tmp_path / "scheduler-state"
        self.bin = fake_schedulers.install(tmp_path / "bin")
        self.platform = platform
        self.extra = extra
        write_env(self.home, configured_values())

    def env(self, **extra: str) -> dict[str, str]:
        env = cli_env(
            self.home,
            HOME=str(self.user),
            PATH=str(self.bin),
            FAKE_SCHEDULER_STATE=str(self.state),
            SIDEQUEST_PLATFORM=self.platform,
            **{**self.extra, **extra},
        )
        env.pop("XDG_CONFIG_HOME", None)
        return env

    def run(self, *args: str, **extra: str):
        return run_cli("keepalive", *args, env=self.env(**extra))

    @property
    def argv(self) -> list[str]:
        """What the job must run: this Python (the CLI runs as `python -m`), the home, refresh-qb."""
        return [PYTHON, "-m", "doctor.commands.cli", "--home", str(self.home.absolute()), "refresh-qb"]

    def calls(self, tool: str | None = None) -> list[list[str]]:
        return fake_schedulers.calls(self.state, tool)


@pytest.fixture
def make_world(tmp_path: Path):
    return lambda platform, **extra: World(tmp_path, platform, **extra)


def assert_ok(result) -> None:
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr


# ------------------------------------------------------------------------------------ macOS


def expected_plist(argv: list[str], days: list[int]) -> bytes:
    args = "".join(f"\t\t<string>{a}</string>\n" for a in argv)
    entries = "".join(
        f"\t\t<dict>\n\t\t\t<key>Day</key>\n\t\t\t<integer>{d}</integer>\n"
        "\t\t\t<key>Hour</key>\n\t\t\t<integer>12</integer>\n\t\t\t<key>Minute</key>\n\t\t\t<integer>0</integer>\n"
        "\t\t</dict>\n"
        for d in days
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">\n'
        '<plist version="1.0">\n<dict>\n'
        f"\t<key>Label</key>\n\t<string>{LABEL}</string>\n"
        f"\t<key>ProgramArguments</key>\n\t<array>\n{args}\t</array>\n"
        f"\t<key>StartCalendarInterval</key>\n\t<array>\n{entries}\t</array>\n"
        "\t<key>ProcessType</key>\n\t<string>Background</string>\n"
        "</dict>\n</plist>\n"
    ).encode()


def test_macos_on_writes_the_launch_agent_and_bootstraps_it_in_the_gui_domain(make_world) -> None:
    world = make_world("darwin")
    result = world.run("on")
    assert_ok(result)
    plist = world.user / "Library" / "LaunchAgents" / f"{LABEL}.plist"
    assert plist.read_bytes() == expected_plist(world.argv, [1, 8, 15, 22, 29])
    assert plistlib.loads(plist.read_bytes())["ProgramArguments"] == world.argv
    assert ["launchctl", "bootstrap", f"gui/{os.getuid()}", str(plist)] in world.calls()
    assert fake_schedulers.state_of(world.state, "launchctl")["loaded"] == {LABEL: str(plist)}
    assert "Keep-alive on" in result.stdout and str(plist) in result.stdout


def test_macos_second_on_updates_without_a_second_job_and_off_removes_it(make_world) -> None:
    world = make_world("darwin")
    assert_ok(world.run("on"))
    result = world.run("on", "--every", "14")
    assert_ok(result)
    assert "updated" in result.stdout
    plist = world.user / "Library" / "LaunchAgents" / f"{LABEL}.plist"
    assert plist.read_bytes() == expected_plist(world.argv, [1, 15, 29])
    # Booted out before the new definition was bootstrapped: one job, never two.
    assert world.calls("launchctl")[-2:] == [
        ["launchctl", "bootout", f"gui/{os.getuid()}/{LABEL}"],
        ["launchctl", "bootstrap", f"gui/{os.getuid()}", str(plist)],
    ]
    assert list(fake_schedulers.state_of(world.state, "launchctl")["loaded"]) == [LABEL]
    assert sorted(p.name for p in plist.parent.iterdir()) == [plist.name]

    status = world.run("status")
    assert_ok(status)
    assert "Keep-alive: on." in status.stdout and "days 1, 15, 29" in status.stdout

    off = world.run("off")
    assert_ok(off)
    assert not plist.exists()
    assert fake_schedulers.state_of(world.state, "launchctl")["loaded"] == {}
    assert read_record(world.home) is None
    assert "Keep-alive: off" in world.run("status").stdout


def test_macos_before_10_10_falls_back_to_launchctl_load(make_world) -> None:
    world = make_world("darwin", FAKE_LAUNCHCTL_LEGACY="1")
    assert_ok(world.run("on"))
    plist = world.user / "Library" / "LaunchAgents" / f"{LABEL}.plist"
    assert ["launchctl", "load", "-w", str(plist)] in world.calls()
    assert_ok(world.run("on"))  # update: unload, then load again
    assert ["launchctl", "unload", str(plist)] in world.calls()
    status = world.run("status")
    assert "Keep-alive: on." in status.stdout, status.stdout
    assert_ok(world.run("off"))
    assert fake_schedulers.state_of(world.state, "launchctl")["loaded"] == {}


def test_every_1_is_a_daily_calendar_interval(make_world) -> None:
    world = make_world("darwin")
    assert_ok(world.run("on", "--every", "1"))
    data = plistlib.loads((world.user / "Library" / "LaunchAgents" / f"{LABEL}.plist").read_bytes())
    assert data["StartCalendarInterval"] == {"Hour": 12, "Minute": 0}
    assert "every day at 12:00" in world.run("status").stdout


# ---------------------------------------------------------------------------------- Windows


EXPECTED_TASK = """<?xml version="1.0" encoding="UTF-16"?>
<Task version="1.2" xmlns="http://schemas.microsoft.com/windows/2004/02/mit/task">
  <RegistrationInfo>
    <Description>SideQuest keep-alive: refreshes the QuickBooks connection so it never reaches Intuit's 100-day limit. Every {every} days. Remove it with: sidequest keepalive off</Description>
    <URI>\\SideQuest keepalive</URI>
  </RegistrationInfo>
  <Triggers>
    <CalendarTrigger>
      <StartBoundary>{start}</StartBoundary>
      <Enabled>true</Enabled>
      <ScheduleByDay>
        <DaysInterval>{every}</DaysInterval>
      </ScheduleByDay>
    </CalendarTrigger>
  </Triggers>
  <Principals>
    <Principal id="Author">
      <LogonType>InteractiveToken</LogonType>
      <RunLevel>LeastPrivilege</RunLevel>
    </Principal>
  </Principals>
  <Settings>
    <MultipleInstancesPolicy>IgnoreNew</MultipleInstancesPolicy>
    <DisallowStartIfOnBatteries>false</DisallowStartIfOnBatteries>
    <StopIfGoingOnBatteries>false</StopIfGoingOnBatteries>
    <StartWhenAvailable>true</StartWhenAvailable>
    <ExecutionTimeLimit>PT10M</ExecutionTimeLimit>
    <Enabled>true</Enabled>
  </Settings>
  <Actions Context="Author">
    <Exec>
      <Command>{command}</Command>
      <Arguments>{arguments}</Arguments>
    </Exec>
  </Actions>
</Task>
"""  # noqa: E501


def test_windows_on_creates_one_user_task_from_utf16_xml_and_off_deletes_it(make_world, tmp_path: Path) -> None:
    world = make_world("windows")
    result = world.run("on", "--every", "10")
    assert_ok(result)
    create = next(c for c in world.calls("schtasks") if c[1] == "/Create")
    assert create[:5] == ["schtasks", "/Create", "/TN", TASK, "/XML"] and create[6:] == ["/F"]
    xml = fake_schedulers.state_of(world.state, "schtasks")["tasks"][TASK]
    start = re.search(r"<StartBoundary>(\d{4}-\d\d-\d\dT12:00:00)</StartBoundary>", xml).group(1)
    assert abs(datetime.strptime(start, "%Y-%m-%dT%H:%M:%S").date() - datetime.now().date()) <= timedelta(days=1)
    arguments = subprocess.list2cmdline(world.argv[1:])
    assert xml == EXPECTED_TASK.format(every=10, start=start, command=world.argv[0], arguments=arguments)
    assert "/SC" not in create and "/RU" not in create  # a task of the current user: no admin rights asked

    assert_ok(world.run("on", "--every", "10"))
    assert list(fake_schedulers.state_of(world.state, "schtasks")["tasks"]) == [TASK]
    status = world.run("status")
    assert_ok(status)
    assert "Keep-alive: on." in status.stdout and "every 10 days at 12:00" in status.stdout
    assert "differs" not in status.stdout  # the task's command line reads back as the same argv

    assert_ok(world.run("off"))
    assert fake_schedulers.state_of(world.state, "schtasks")["tasks"] == {}
    assert ["schtasks", "/Delete", "/TN", TASK, "/F"] in world.calls()


def test_windows_task_file_is_removed_after_create(make_world) -> None:
    world = make_world("windows")
    assert_ok(world.run("on"))
    create = next(c for c in world.calls("schtasks") if c[1] == "/Create")
    xml_path = Path(create[create.index("/XML") + 1])
    assert xml_path.name.startswith("sidequest-keepalive-") and not xml_path.exists()


# ------------------------------------------------------------------------------------ Linux


def test_linux_with_a_user_manager_installs_a_systemd_timer(make_world) -> None:
    world = make_world("linux")
    result = world.run("on")
    assert_ok(result)
    folder = world.user / ".config" / "systemd" / "user"
    quoted = " ".join(f'"{a}"' for a in world.argv)
    assert (folder / "sidequest-keepalive.service").read_text() == (
        "[Unit]\n"
        "Description=SideQuest keep-alive: refreshes the QuickBooks connection so it never reaches Intuit's "
        "100-day limit\n\n"
        f"[Service]\nType=oneshot\nExecStart={quoted}\n"
    )
    assert (folder / "sidequest-keepalive.timer").read_text() == (
        "[Unit]\n"
        "Description=SideQuest keep-alive: refreshes the QuickBooks connection so it never reaches Intuit's "
        "100-day limit (every 7 days)\n\n"
        "[Timer]\nOnCalendar=*-*-01/7 12:00:00\nPersistent=true\nRandomizedDelaySec=15min\n\n"
        "[Install]\nWantedBy=timers.target\n"
    )
    state = fake_schedulers.state_of(world.state, "systemctl")
    assert state["enabled"] == ["sidequest-keepalive.timer"] and state["active"] == ["sidequest-keepalive.timer"]
    assert world.calls("crontab") == [["crontab", "-l"]]  # looked for an older cron job; wrote nothing
    assert all("--user" in call for call in world.calls("systemctl"))

    assert_ok(world.run("on", "--every", "3"))
    assert "OnCalendar=*-*-01/3 12:00:00" in (folder / "sidequest-keepalive.timer").read_text()
    assert fake_schedulers.state_of(world.state, "systemctl")["restarts"] == ["sidequest-keepalive.timer"] * 2

    status = world.run("status")
    assert "Keep-alive: on." in status.stdout and "systemd" in status.stdout

    assert_ok(world.run("off"))
    assert sorted(folder.iterdir()) == []
    state = fake_schedulers.state_of(world.state, "systemctl")
    assert state["enabled"] == [] and state["active"] == [] and state["loaded"] == []


OWNER_CRONTAB = (
    b"# m h dom mon dow command\r\n"
    b"MAILTO=owner@example.com\n"
    b"*/5 * * * * /usr/local/bin/backup --quiet   # keep my spacing\n"
    b"\n"
    b"@reboot /home/me/start.sh\n"
)


def test_linux_without_a_user_manager_uses_the_crontab_and_keeps_every_other_line(make_world) -> None:
    world = make_world("linux", FAKE_SYSTEMCTL_USER="down")
    world.state.mkdir()
    (world.state / "crontab.table").write_bytes(OWNER_CRONTAB)
    assert_ok(world.run("on"))
    table = (world.state / "crontab.table").read_bytes()
    line = f"0 12 */7 * * {' '.join(world.argv)} >/dev/null 2>&1 # sidequest-keepalive\n".encode()
    assert table == OWNER_CRONTAB + line
    assert not (world.user / ".config" / "systemd").exists()

    assert_ok(world.run("on"))  # the same again: nothing written
    assert [c for c in world.calls("crontab") if c[1] == "-"].__len__() == 1
    assert_ok(world.run("on", "--every", "10"))
    table = (world.state / "crontab.table").read_bytes()
    assert table == OWNER_CRONTAB + line.replace(b"*/7", b"*/10")

    status = world.run("status")
    assert "Keep-alive: on." in status.stdout and "cron" in status.stdout

    assert_ok(world.run("off"))
    assert (world.state / "crontab.table").read_bytes() == OWNER_CRONTAB


def test_crontab_without_a_final_newline_and_no_crontab_at_all(make_world) -> None:
    world = make_world("linux", FAKE_SYSTEMCTL_USER="down")
    assert_ok(world.run("on"))  # no crontab yet: ours is the only line
    assert (world.state / "crontab.table").read_bytes().count(b"\n") == 1
    assert_ok(world.run("off"))
    assert not (world.state / "crontab.table").exists()  # off leaves no crontab, as before

    (world.state / "crontab.table").write_bytes(b"@daily /bin/true")
    assert_ok(world.run("on"))
    assert (world.state / "crontab.table").read_bytes().startswith(b"@daily /bin/true\n0 12 */7")


def test_crontab_paths_with_spaces_and_percent_are_quoted(tmp_path: Path) -> None:
    from doctor.commands.schedulers import Cron, Job

    line = Cron().line(Job(("/opt/my apps/sidequest", "--home", "/home/me/100% sure", "refresh-qb"), 7))
    assert line == (
        b"0 12 */7 * * '/opt/my apps/sidequest' --home '/home/me/100\\% sure' refresh-qb >/dev/null 2>&1 "
        b"# sidequest-keepalive\n"
    )
    assert Cron()._parse(line) == (("/opt/my apps/sidequest", "--home", "/home/me/100% sure", "refresh-qb"), 7)


def test_linux_moves_a_cron_job_to_systemd_when_a_user_manager_appears(make_world) -> None:
    world = make_world("linux")
    world.state.mkdir()
    (world.state / "crontab.table").write_bytes(OWNER_CRONTAB)
    assert_ok(world.run("on", FAKE_SYSTEMCTL_USER="down"))
    result = world.run("on")
    assert_ok(result)
    assert "Removed the earlier keep-alive from the user crontab" in result.stdout
    assert (world.state / "crontab.table").read_bytes() == OWNER_CRONTAB
    assert (world.user / ".config" / "systemd" / "user" / "sidequest-keepalive.timer").exists()
    assert read_record(world.home).scheduler == "systemd"


def test_real_systemctl_without_a_user_bus_falls_back_to_cron(tmp_path: Path) -> None:
    real = shutil.which("systemctl")
    if real is None:
        pytest.skip("no systemctl on this machine")
    if subprocess.run([real, "--user", "show-environment"], capture_output=True).returncode == 0:
        pytest.skip("this machine has a working systemd user manager; the fallback cannot be shown with it")
    world = World(tmp_path, "linux")
    fake_schedulers.install(world.bin, ("crontab",))
    (world.bin / "systemctl").unlink()
    (world.bin / "systemctl").symlink_to(real)
    assert_ok(world.run("on"))
    assert b"# sidequest-keepalive" in (world.state / "crontab.table").read_bytes()
    assert_ok(world.run("off"))


def test_real_crontab(tmp_path: Path) -> None:
    """With the machine's own crontab: on adds our line, off leaves the table exactly as it was."""
    real = shutil.which("crontab")
    if real is None:
        pytest.skip("no crontab program on this machine")
    before = subprocess.run([real, "-l"], capture_output=True)
    world = World(tmp_path, "linux", FAKE_SYSTEMCTL_USER="down")
    fake_schedulers.install(world.bin, ("systemctl",))
    (world.bin / "crontab").symlink_to(real)
    try:
        assert_ok(world.run("on"))
        listed = subprocess.run([real, "-l"], capture_output=True).stdout
        assert listed.count(b"# sidequest-keepalive") == 1
        assert_ok(world.run("on"))
        assert subprocess.run([real, "-l"], capture_output=True).stdout == listed
        assert_ok(world.run("off"))
        after = subprocess.run([real, "-l"], capture_output=True)
        assert after.stdout == (before.stdout if before.returncode == 0 else b"")
    finally:
        if before.returncode == 0:
            subprocess.run([real, "-"], input=before.stdout, check=True)
        else:
            subprocess.run([real, "-r"], capture_output=True)


# ----------------------------------------------------------------------- refusals and usage


@pytest.mark.parametrize("args", [("on", "--every", "31"), ("status", "--every", "3"), ("on", "--every", "0")])
def test_bad_intervals_are_usage_errors(make_world, args) -> None:
    world = make_world("linux")
    result = world.run(*args)
    assert result.returncode == 2, result.stderr
    assert world.calls() == []


def test_an_unknown_platform_seam_value_is_a_usage_error(make_world) -> None:
    world = make_world("beos")
    result = world.run("status")
    assert result.returncode == 2 and "SIDEQUEST_PLATFORM" in result.stderr


def test_on_refuses_a_connector_that_is_not_set_up(make_world) -> None:
    world = make_world("darwin")
    (world.home / ".env").unlink()
    result = world.run("on")
    assert result.returncode == 1
    assert "sidequest setup" in result.stderr and "QB_CLIENT_ID" in result.stderr
    assert world.calls() == [] and read_record(world.home) is None


def test_on_refuses_a_chain_past_its_recorded_expiry(make_world) -> None:
    world = make_world("linux")
    past = datetime.now(timezone.utc) - timedelta(days=120)
    write_env(world.home, configured_values(**metadata(refreshed_at=past)))
    result = world.run("on")
    assert result.returncode == 1 and "sidequest reauth-qb" in result.stderr
    assert world.calls() == []


def test_on_refuses_after_intuit_refused_the_chain_until_a_later_good_refresh(make_world) -> None:
    world = make_world("windows")
    now = datetime.now(timezone.utc)
    write_env(world.home, configured_values(**metadata(refreshed_at=now - timedelta(days=3))))
    record_run(world.home, "invalid_grant", now=now - timedelta(days=1))
    result = world.run("on")
    assert result.returncode == 1
    assert "invalid_grant" in result.stderr and "sidequest reauth-qb" in result.stderr
    assert world.calls() == []
    # reauth-qb (or any good refresh) after the refusal records a newer QB_TOKEN_REFRESHED_AT.
    write_env(world.home, configured_values(**metadata(refreshed_at=now)))
    assert_ok(world.run("on"))


def test_off_with_nothing_installed_changes_nothing(make_world) -> None:
    world = make_world("darwin")
    result = world.run("off")
    assert_ok(result)
    assert "nothing was changed" in result.stdout
    assert [c[1] for c in world.calls()] == []  # no plist: nothing to ask launchctl


def test_status_names_the_last_run_and_its_outcome(make_world, fake_intuit) -> None:
    world = make_world("linux")
    fake_intuit.add_app(CLIENT_ID, CLIENT_SECRET, "sandbox")
    fake_intuit.add_company(REALM_ID, "Larry's Bakery", "sandbox")
    token = fake_intuit.mint_chain(CLIENT_ID, REALM_ID)
    write_env(world.home, configured_values(QB_REFRESH_TOKEN=token))
    assert_ok(world.run("on"))
    assert_ok(run_cli("refresh-qb", env={**world.env(), **fake_intuit.environ()}))
    fake_intuit.disconnect(REALM_ID)
    assert run_cli("refresh-qb", env={**world.env(), **fake_intuit.environ()}).returncode == 1
    status = world.run("status")
    assert_ok(status)
    last = re.search(r"last run:  (\S+ \S+) UTC: failed \(invalid_grant\)", status.stdout)
    assert last, status.stdout
    assert "before:" in status.stdout and " ok" in status.stdout
    for secret in (token, CLIENT_SECRET, fake_intuit.current_refresh_token(CLIENT_ID, REALM_ID) or token):
        assert secret not in status.stdout + status.stderr


def test_status_says_when_the_installed_job_runs_another_program(make_world) -> None:
    world = make_world("darwin")
    assert_ok(world.run("on"))
    plist = world.user / "Library" / "LaunchAgents" / f"{LABEL}.plist"
    data = plistlib.loads(plist.read_bytes())
    data["ProgramArguments"][0] = "/old/venv/bin/sidequest"
    plist.write_bytes(plistlib.dumps(data))
    status = world.run("status")
    assert "differs" in status.stdout and "/old/venv/bin/sidequest" in status.stdout


def test_the_job_runs_the_sidequest_console_script_by_its_absolute_path(make_world) -> None:
    script = Path(sys.executable).parent / "sidequest"
    if not script.is_file():
        pytest.skip("the sidequest console script is not installed next to this Python")
    world = make_world("darwin")
    proc = subprocess.run([str(script), "keepalive", "on"], env=world.env(), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    data = plistlib.loads((world.user / "Library" / "LaunchAgents" / f"{LABEL}.plist").read_bytes())
    assert data["ProgramArguments"] == [str(script), "--home", str(world.home.absolute()), "refresh-qb"]


def test_the_record_stamps_use_utc(make_world) -> None:
    world = make_world("linux")
    assert_ok(world.run("on"))
    record = read_record(world.home)
    assert record is not None and record.every_days == 7 and record.command == tuple(world.argv)
    assert stamp(record.installed_at).endswith("Z")
    assert (world.home / "keepalive.json").stat().st_mode & 0o777 == 0o600


# ----------------------------------------------------------------- refresh-qb records its outcome


def test_refresh_qb_records_ok_and_refusals_without_a_token(make_world, fake_intuit) -> None:
    from doctor.store.run_log import read_runs

    world = make_world("linux")
    fake_intuit.add_app(CLIENT_ID, CLIENT_SECRET, "sandbox")
    fake_intuit.add_company(REALM_ID, "Larry's Bakery", "sandbox")
    fake_intuit.rotation = "every_call"
    token = fake_intuit.mint_chain(CLIENT_ID, REALM_ID)
    write_env(world.home, configured_values(QB_REFRESH_TOKEN=token))
    env = {**world.env(), **fake_intuit.environ()}
    assert run_cli("refresh-qb", env=env).returncode == 0
    fake_intuit.fail_mode = "503"
    assert run_cli("refresh-qb", env=env).returncode == 1
    fake_intuit.fail_mode = None
    write_env(world.home, {"QB_CLIENT_ID": CLIENT_ID})
    assert run_cli("refresh-qb", env=env).returncode == 1
    assert [r.outcome for r in read_runs(world.home)] == ["ok", "server_error", "not_configured"]
    log = (world.home / "refresh-runs.json").read_text()
    for secret in (token, CLIENT_SECRET, fake_intuit.current_refresh_token(CLIENT_ID, REALM_ID)):
        assert secret not in log


def test_status_says_when_the_scheduler_will_not_run_the_job(make_world) -> None:
    world = make_world("linux")
    assert_ok(world.run("on"))
    disabled = subprocess.run(
        ["systemctl", "--user", "disable", "--now", "sidequest-keepalive.timer"],
        env=world.env(),
        capture_output=True,
    )
    assert disabled.returncode == 0
    status = world.run("status")
    assert "installed but NOT active" in status.stdout, status.stdout
    result = world.run("on")  # on repairs it
    assert_ok(result)
    assert "updated" in result.stdout and "Keep-alive: on." in world.run("status").stdout
