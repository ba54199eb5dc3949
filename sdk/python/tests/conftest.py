"""Starts the real release binary once per test session: temp data dir, the shared test policy,
an agent key and an admin token from the operator commands, ``serve`` on 127.0.0.1:0, and the
bound address read from its start-up log line."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import httpx
import pytest

SDK_DIR = Path(__file__).resolve().parents[2]
BIN = os.environ.get("AGENT_OTP_BIN") or str(SDK_DIR.parent / "target" / "release" / "agent-otp")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENT_OTP_")}
    env.update(NO_COLOR="1", RUST_LOG="info")
    return env


@dataclass
class Server:
    url: str
    key: str
    admin: str
    data_dir: str

    def agent(self, name: str) -> str:
        out = subprocess.run(
            [BIN, "agent", "create", name, "--data-dir", self.data_dir],
            check=True, capture_output=True, text=True, env=_env(),
        )
        return out.stdout.strip().splitlines()[-1]

    def service(self, name: str, actions: str) -> str:
        """Creates a protected service for these action patterns; returns its ``sk_…`` key."""
        out = subprocess.run(
            [BIN, "service", "create", name, "--actions", actions, "--data-dir", self.data_dir],
            check=True, capture_output=True, text=True, env=_env(),
        )
        keys = [line.strip() for line in out.stdout.splitlines() if line.strip().startswith("sk_")]
        assert keys, f"no sk_ key in the output of service create:\n{out.stdout}"
        return keys[0]

    def decide(self, permission_id: str, verdict: str, body: dict | None = None) -> None:
        r = httpx.post(
            f"{self.url}/api/v1/admin/permissions/{permission_id}/{verdict}",
            headers={"Authorization": f"Bearer {self.admin}"},
            json=body or {},
        )
        assert r.status_code == 200, r.text

    def approve_later(self, permission_id: str, delay: float = 0.3, verdict: str = "approve") -> None:
        """Approves (or another verdict: ``deny``, ``revoke``) from another thread, once the
        client is already waiting."""
        threading.Timer(delay, self.decide, (permission_id, verdict)).start()

    def pending(self) -> list:
        """The pending requests, as a human sees them (admin API)."""
        r = httpx.get(
            f"{self.url}/api/v1/admin/permissions",
            params={"status": "pending", "limit": 100},
            headers={"Authorization": f"Bearer {self.admin}"},
        )
        assert r.status_code == 200, r.text
        return r.json()["data"]


@pytest.fixture(scope="session")
def server() -> Iterator[Server]:
    assert Path(BIN).exists(), f"build the server first (cargo build --release), or set AGENT_OTP_BIN: {BIN}"
    tmp = tempfile.mkdtemp(prefix="agent-otp-py-")
    data = os.path.join(tmp, "data")

    def operator(*args: str) -> str:
        out = subprocess.run([BIN, *args, "--data-dir", data], check=True, capture_output=True, text=True, env=_env())
        return out.stdout.strip().splitlines()[-1]

    # Operator commands never create a database: `init` makes it, as a newcomer's first step.
    subprocess.run([BIN, "init", "--data-dir", data], check=True, capture_output=True, env=_env())
    key = operator("agent", "create", "py-agent")
    admin = operator("admin", "token", "create")
    proc = subprocess.Popen(
        [BIN, "serve", "--listen", "127.0.0.1:0", "--data-dir", data,
         "--policies", str(SDK_DIR / "testdata" / "policies.yaml")],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=_env(),
    )
    url = None
    seen = []
    deadline = time.monotonic() + 15
    assert proc.stderr is not None
    while url is None and time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        line = ANSI.sub("", line)
        seen.append(line)
        m = re.search(r"agent-otp listening.*?addr=(\S+)", line)
        if m:
            url = f"http://{m.group(1)}"
    assert url, "server did not start:\n" + "".join(seen)
    # Keep draining its log so the pipe never fills.
    threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()  # type: ignore[union-attr]
    try:
        yield Server(url=url, key=key, admin=admin, data_dir=data)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)
