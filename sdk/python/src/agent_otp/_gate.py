"""The gate the framework wrappers share: before a tool runs, ask for permission (waiting for a
human), use the token once with the tool's input as ``actionDetails``, then let the tool run."""

from __future__ import annotations

from typing import Any, Callable, Dict, Mapping, Optional, Union

from .client import AgentOTPClient

Input = Dict[str, Any]
FromInput = Union[None, str, Callable[[Input], Optional[str]]]
MapFromInput = Union[None, Mapping[str, Any], Callable[[Input], Optional[Mapping[str, Any]]]]


class Gate:
    def __init__(
        self,
        client: AgentOTPClient,
        action: str,
        *,
        tool_name: str,
        resource: FromInput = None,
        scope: MapFromInput = None,
        action_details: MapFromInput = "input",  # type: ignore[assignment]
        ttl: Optional[int] = None,
        timeout: float = 300.0,
    ) -> None:
        self.client = client
        self.action = action
        self.tool_name = tool_name
        self.resource = resource
        self.scope = scope
        self.action_details = action_details
        self.ttl = ttl
        self.timeout = timeout

    def check(self, tool_input: Input) -> None:
        """Raises an :class:`~agent_otp.AgentOTPError` unless the call may go ahead (token used)."""
        details = tool_input if self.action_details == "input" else _pick(self.action_details, tool_input)
        with self.client.permission(
            self.action,
            resource=_pick(self.resource, tool_input),
            scope=_pick(self.scope, tool_input),
            context={"tool": self.tool_name, "input": tool_input},
            ttl=self.ttl,
            action_details=details,
            timeout=self.timeout,
        ):
            pass


def _pick(value: Any, tool_input: Input) -> Any:
    return value(tool_input) if callable(value) else value
