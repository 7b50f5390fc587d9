"""Custom policies: your own class, from Python or (opt-in) named in a scenario.

From Python pass an object with ``interval``, ``window`` and ``decide(obs)`` to
``capsim.run(scenario, policy=MyPolicy())``. A scenario may name a class by import path
(``policy: custom``, ``path: mypkg.policies:Mine``, ``params: {...}`` passed to its
constructor), but a scenario file never runs code silently: it is imported only when
the user opts in (``--allow-code``, or ``allow_code=True`` in Python).
"""
from __future__ import annotations

import importlib
from typing import Any, Literal

from pydantic import Field, field_validator

from capsim.models.autoscaling.base import Policy
from capsim.models.autoscaling.fixed import Bounded

__all__ = ["CustomConfig", "CodeNotAllowed"]


class CodeNotAllowed(Exception):
    """A scenario names Python code and the user did not pass --allow-code."""


class CustomConfig(Bounded):
    policy: Literal["custom"] = "custom"
    path: str = Field(description="import path of the policy class, module:Class")
    params: dict[str, Any] = Field(default_factory=dict, description="keyword arguments of its constructor")

    @field_validator("path")
    @classmethod
    def _path(cls, v: str) -> str:
        module, sep, name = v.partition(":")
        if not sep or not module or not name.isidentifier():
            raise ValueError(f"expected module.path:ClassName, got {v!r}")
        return v

    def build(self, allow_code: bool = False) -> Policy:
        if not allow_code:
            raise CodeNotAllowed(f"autoscaler.path: the scenario names Python code ({self.path}); "
                                 "run it only if you trust it, with --allow-code")
        module, _, name = self.path.partition(":")
        policy = getattr(importlib.import_module(module), name)(**self.params)
        missing = [a for a in ("interval", "window", "decide") if not hasattr(policy, a)]
        if missing:
            raise TypeError(f"{self.path}: a policy needs {', '.join(missing)}")
        return policy
