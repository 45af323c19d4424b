"""``rproc status --sessions``: rproc's own running sessions answer with their remotes' rpmsg device state."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from remoteproc import sessions
from remoteproc.cli import main

REPO = Path(__file__).resolve().parents[2]


def _status(capsys: pytest.CaptureFixture[str], *extra: str) -> Any:
    assert main(["status", "--sessions", *extra]) == 0
    out = capsys.readouterr().out
    return json.loads(out) if "--json" in extra else out


def test_a_running_listen_session_is_listed_with_its_device_state(
    example_firmware: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    runtime = tmp_path / "run"
    monkeypatch.setenv("RPROC_RUNTIME_DIR", str(runtime))
    listen = ["listen", "--platform", "sim", str(example_firmware), "rpmsg-echo", "--seconds", "30", "--send", "hi"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "remoteproc", *listen],
        cwd=REPO,
        env={**os.environ, "RPROC_RUNTIME_DIR": str(runtime)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        found: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            found = _status(capsys, "--json")
            if found and found[0]["remotes"] and found[0]["remotes"][0]["rpmsg"]:
                break
            time.sleep(0.1)
        assert len(found) == 1, found
        (session,) = found
        assert session["pid"] == proc.pid and session["command"][0] == "listen"
        assert (runtime / f"{proc.pid}.sock").is_socket()
        assert runtime.stat().st_mode & 0o777 == 0o700
        (remote,) = session["remotes"]
        assert remote["platform"] == "sim" and remote["firmware"] == str(example_firmware)
        assert remote["state"] == "running"
        dev = remote["rpmsg"]
        assert dev["role"] == "host" and "rpmsg-echo" in dev["channels"]
        assert [v["index"] for v in dev["vrings"]] == [0, 1] and not any(v["broken"] for v in dev["vrings"])
        assert any(e["peer"] == dev["channels"]["rpmsg-echo"] for e in dev["endpoints"])  # listen's endpoint
        text = _status(capsys)
        assert f"pid {proc.pid}: rproc listen" in text and "rpmsg-echo at 0x" in text and "vring1 num " in text
    finally:
        proc.kill()
        proc.communicate(timeout=10)
    # Killed without a goodbye: its socket no longer answers and is removed when listed.
    assert _status(capsys, "--json") == []
    assert not (runtime / f"{proc.pid}.sock").exists()
    assert "no rproc sessions running" in _status(capsys)


def test_a_session_ends_its_listing_and_commands_without_a_remote_serve_nothing(
    example_firmware: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    runtime = tmp_path / "run"
    monkeypatch.setenv("RPROC_RUNTIME_DIR", str(runtime))
    seen: list[list[dict[str, Any]]] = []
    real_note = sessions.note

    def note_and_look(rp: Any) -> None:
        real_note(rp)
        seen.append(sessions.list_sessions())  # asked from inside the running session

    monkeypatch.setattr(sessions, "note", note_and_look)
    assert main(["send", "--platform", "sim", str(example_firmware), "rpmsg-echo", "hi"]) == 0
    capsys.readouterr()
    assert seen and seen[0][0]["pid"] == os.getpid() and seen[0][0]["command"][0] == "send"
    assert list(runtime.glob("*.sock")) == []  # gone with the session
    assert main(["info", str(example_firmware)]) == 0
    assert list(runtime.glob("*.sock")) == []


def test_an_unsafe_runtime_dir_is_not_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runtime = tmp_path / "shared"
    runtime.mkdir()
    runtime.chmod(0o777)  # anyone could plant a socket here: not trusted
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(runtime / "1.sock"))
    stale.close()
    monkeypatch.setenv("RPROC_RUNTIME_DIR", str(runtime))
    assert sessions.list_sessions() == []
    with sessions.serving(["load"]) as path:
        assert path is None
    runtime.chmod(0o700)
    assert sessions.list_sessions() == []  # the stale socket (nobody listening) is removed
    assert not (runtime / "1.sock").exists()
