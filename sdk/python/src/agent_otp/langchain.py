"""LangChain: gate any tool behind an agent-otp permission (``pip install "agent-otp[langchain]"``).

    from agent_otp import AgentOTPClient
    from agent_otp.langchain import protect_tool

    send_email = protect_tool(send_email, AgentOTPClient(), action="email.send",
                              resource=lambda args: args["to"])

Each call asks for permission (waiting for a human if the policy says so), uses the token once
with the tool's input as ``actionDetails`` (so scope rules apply to the real arguments), and only
then runs the tool. A refusal becomes a :class:`ToolException` the agent sees as the tool's
answer, so it can adapt instead of crashing.
"""

from __future__ import annotations

from typing import Any, Optional

from ._gate import FromInput, Gate, MapFromInput
from .client import AgentOTPClient
from .errors import AgentOTPError


def protect_tool(
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
    """A copy of LangChain ``tool`` (a ``BaseTool``) that runs only with permission.

    ``action`` defaults to the tool's name. ``resource``, ``scope`` and ``action_details`` may be
    values or functions of the tool input (a dict); ``action_details`` defaults to the input.
    """
    from langchain_core.tools import StructuredTool, ToolException

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

    def run(**kwargs: Any) -> Any:
        try:
            gate.check(kwargs)
        except AgentOTPError as e:
            raise ToolException(f"agent-otp refused {tool.name}: {e}") from e
        return tool.invoke(kwargs)

    return StructuredTool.from_function(
        func=run,
        name=tool.name,
        description=f"{tool.description} (each call needs approval through agent-otp)",
        args_schema=tool.args_schema,
        handle_tool_error=True,
    )
