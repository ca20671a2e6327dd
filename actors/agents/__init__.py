"""The agent framework (plain Python; the Ray shells are in :mod:`actors.remote`).

A chat turn: the session's context is loaded, the :mod:`router <actors.agents.router>`
classifies the request and picks an agent, the agent runs library pipelines
through the executors and shapes one :class:`~actors.agents.models.AgentResponse`,
and the turn, the response and the updated context are written through to the store.
"""
