"""The framework wrappers. LangChain runs for real (langchain-core is installed for the tests);
CrewAI is too heavy to install here (it pulls in LLM clients, a vector store and more), so its
wrapper runs against a minimal stand-in with the same ``crewai.tools.BaseTool`` shape."""

from __future__ import annotations

import sys
import types
from typing import Any

import pytest

from agent_otp import AgentOTPClient


@pytest.fixture()
def otp(server):
    with AgentOTPClient(server.key, server.url) as c:
        yield c


def test_importing_the_package_does_not_import_frameworks():
    import os
    import subprocess
    from pathlib import Path

    code = "import agent_otp, sys; print('langchain_core' in sys.modules, 'crewai' in sys.modules)"
    src = str(Path(__file__).resolve().parents[1] / "src")
    env = {**os.environ, "PYTHONPATH": src}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.strip() == "False False"


def test_langchain_tool_runs_only_with_permission(otp, server):
    from langchain_core.tools import tool

    from agent_otp.langchain import protect_tool

    sent: list[dict] = []

    @tool
    def send_email(recipients: list[str], subject: str) -> str:
        """Send an email."""
        sent.append({"recipients": recipients, "subject": subject})
        return f"sent to {len(recipients)}"

    guarded = protect_tool(send_email, otp, action="email.send")
    assert guarded.name == "send_email"
    assert "approval" in guarded.description
    assert guarded.invoke({"recipients": ["a@x.org"], "subject": "hi"}) == "sent to 1"
    # Three recipients break the policy's max_recipients_count: 2 — the tool does not run, and the
    # agent gets the refusal as the tool's answer.
    answer = guarded.invoke({"recipients": ["a", "b", "c"], "subject": "spam"})
    assert answer.startswith("agent-otp refused send_email"), answer
    assert "max_recipients" in answer or "recipients" in answer
    denied = protect_tool(send_email, otp, action="shell.mail").invoke({"recipients": ["a"], "subject": "x"})
    assert "deny-shell" in denied
    assert len(sent) == 1


def test_langchain_tool_waits_for_a_human(otp, server):
    from langchain_core.tools import tool

    from agent_otp.langchain import protect_tool

    @tool
    def wire_money(amount: int) -> str:
        """Wire money."""
        return f"wired {amount}"

    pending_ids: list[str] = []
    original = otp.request_permission

    def spy(*a: Any, **kw: Any):
        kw["on_pending_approval"] = lambda info: (pending_ids.append(info.permission_id), server.approve_later(info.permission_id))
        return original(*a, **kw)

    otp.request_permission = spy  # type: ignore[method-assign]
    guarded = protect_tool(wire_money, otp, action="bank.transfer", resource=lambda a: f"amount:{a['amount']}")
    assert guarded.invoke({"amount": 40}) == "wired 40"
    assert len(pending_ids) == 1


@pytest.fixture()
def fake_crewai(monkeypatch):
    """A stand-in for ``crewai.tools.BaseTool``: a pydantic model with name, description,
    args_schema, and ``run`` calling ``_run``, as in CrewAI."""
    from pydantic import BaseModel, ConfigDict

    class BaseTool(BaseModel):
        model_config = ConfigDict(arbitrary_types_allowed=True)
        name: str
        description: str
        args_schema: Any = None

        def run(self, *args: Any, **kwargs: Any) -> Any:
            return self._run(*args, **kwargs)

        def _run(self, *args: Any, **kwargs: Any) -> Any:
            raise NotImplementedError

    crewai = types.ModuleType("crewai")
    tools = types.ModuleType("crewai.tools")
    tools.BaseTool = BaseTool  # type: ignore[attr-defined]
    crewai.tools = tools  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "crewai", crewai)
    monkeypatch.setitem(sys.modules, "crewai.tools", tools)
    return BaseTool


def test_crewai_tool_runs_only_with_permission(otp, fake_crewai):
    from agent_otp.crewai import protect_crewai_tool

    class ReadFile(fake_crewai):
        def _run(self, path: str) -> str:
            return f"contents of {path}"

    guarded = protect_crewai_tool(
        ReadFile(name="read_file", description="Read a file."), otp, action="file.read",
        resource=lambda a: a["path"],
    )
    assert guarded.name == "read_file"
    assert guarded.run(path="/etc/motd") == "contents of /etc/motd"
    blocked = protect_crewai_tool(ReadFile(name="run_shell", description="x"), otp, action="shell.exec")
    assert blocked.run(path="/").startswith("agent-otp refused run_shell")
