"""The edge runtime: one process per device."""

from edgestack.agent.runtime import Agent, DataDirError, serve
from edgestack.agent.settings import AgentSettings

__all__ = ["Agent", "AgentSettings", "DataDirError", "serve"]
