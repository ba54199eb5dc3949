"""CrewAI: gate any tool behind an agent-otp permission (``pip install "agent-otp[crewai]"``).

    from agent_otp import AgentOTPClient
    from agent_otp.crewai import protect_crewai_tool

    transfer = protect_crewai_tool(TransferTool(), AgentOTPClient(), action="bank.transfer",
                                   scope=lambda args: {"max_amount": args["amount"]})

Each call asks for permission (waiting for a human if needed), uses the token once with the
tool's input as ``actionDetails``, then runs the tool. A refusal is returned as the tool's answer
(a sentence starting "agent-otp refused"), so the crew can adapt instead of crashing.
"""

from __future__ import annotations

from typing import Any, Optional

from ._gate import FromInput, Gate, MapFromInput
from .client import AgentOTPClient
from .errors import AgentOTPError


def protect_crewai_tool(
    tool: Any,
    client: AgentOTPClient,
    action: Optional[str] = None,
    *,
    resource: FromInput = None,
    scope: MapFromInput = None,
    action_details: Any = "input",
    ttl: Optional[int] = None,
    timeout: float = 300.0,
) -> Any:
    """A CrewAI ``BaseTool`` wrapping ``tool`` that runs only with permission (arguments as in
    :func:`agent_otp.langchain.protect_tool`)."""
    from crewai.tools import BaseTool

    gate = Gate(
        client,
        action or tool.name,
        tool_name=tool.name,
        resource=resource,
        scope=scope,
        action_details=action_details,
        ttl=ttl,
        timeout=timeout,
    )

    class OTPProtectedTool(BaseTool):  # type: ignore[misc, valid-type]
        def _run(self, **kwargs: Any) -> Any:
            try:
                gate.check(kwargs)
            except AgentOTPError as e:
                return f"agent-otp refused {tool.name}: {e}"
            return tool.run(**kwargs)

    return OTPProtectedTool(
        name=tool.name,
        description=f"{tool.description} (each call needs approval through agent-otp)",
        args_schema=tool.args_schema,
    )
