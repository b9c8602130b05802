"""shake_hands in-process: the child it reports is its own, even with other handshakes running beside it."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import psutil
import pytest

from doctor.claude_desktop import handshake
from doctor.claude_desktop.launch import Launch

FAKE = Path(__file__).resolve().parents[1] / "support" / "fake_connector.py"


def _launch(tmp_path: Path, variant: str) -> Launch:
    env = {**os.environ, "FAKE_CONNECTOR_VARIANT": variant, "FAKE_CONNECTOR_PID_FILE": str(tmp_path / variant)}
    return Launch("qb-distributor", sys.executable, sys.executable, (str(FAKE),), env, "/", "", "entry")


def test_handshakes_side_by_side_in_threads_each_report_their_own_child(tmp_path: Path) -> None:
    # Three at once, as the examples script runs its doctors: a healthy one beside two that crash. Each
    # must name its own child, and none may stop another's connector.
    variants = ("healthy", "crash", "crash")
    outcomes: dict[int, handshake.Handshake] = {}

    def shake(index: int) -> None:
        folder = tmp_path / str(index)
        folder.mkdir()
        outcomes[index] = handshake.shake_hands(_launch(folder, variants[index]), timeout=30)

    threads = [threading.Thread(target=shake, args=(i,)) for i in range(len(variants))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for index, variant in enumerate(variants):
        shake_result = outcomes[index]
        pid = int((tmp_path / str(index) / variant).read_text())
        assert shake_result.pid == pid
        assert shake_result.reaped is True and not psutil.pid_exists(pid)
        if variant == "healthy":
            assert shake_result.kind == handshake.OK and len(shake_result.tools) == 2
        else:
            assert shake_result.kind == handshake.EXITED and shake_result.exit_code == 3


@pytest.mark.parametrize("variant", ["crash", "healthy"])
def test_a_child_the_watcher_never_saw_is_named_and_known_to_be_gone(tmp_path: Path, monkeypatch, variant) -> None:
    # A connector that exits at once can be started, ended and reaped by the event loop between two of the
    # watcher's looks (seen on a loaded machine): the SDK's own process object still names it.
    monkeypatch.setattr(handshake, "_new_children", lambda before: [])
    result = handshake.shake_hands(_launch(tmp_path, variant), timeout=30)
    pid = int((tmp_path / variant).read_text())
    assert result.pid == pid
    assert result.reaped is True and not psutil.pid_exists(pid)
    assert result.kind == (handshake.EXITED if variant == "crash" else handshake.OK)


def test_a_start_waiting_for_another_gives_up_within_its_timeout(tmp_path: Path) -> None:
    assert handshake._ONE_AT_A_TIME.acquire(timeout=5)
    try:
        result = handshake.shake_hands(_launch(tmp_path, "healthy"), timeout=0.2)
    finally:
        handshake._ONE_AT_A_TIME.release()
    assert result.kind == handshake.NO_ANSWER and "another start" in (result.error or "")
    assert not (tmp_path / "healthy").exists()  # nothing was started


def test_a_start_whose_turn_comes_after_the_exit_hook_starts_nothing(tmp_path: Path, monkeypatch) -> None:
    released = []

    class ExitHookRunsWhileWaiting:
        """The turn comes only after the exit hook has run."""

        def acquire(self, timeout: float) -> bool:
            handshake._CLOSING.set()
            return True

        def release(self) -> None:
            released.append(True)

    monkeypatch.setattr(handshake, "_ONE_AT_A_TIME", ExitHookRunsWhileWaiting())
    try:
        result = handshake.shake_hands(_launch(tmp_path, "healthy"), timeout=10)
    finally:
        handshake._CLOSING.clear()
    assert result.kind == handshake.NO_ANSWER and "exiting" in (result.error or "")
    assert released == [True]  # the turn is handed on
    assert not (tmp_path / "healthy").exists()  # nothing was started
