"""Custom policies: your own class, from Python or (opt-in) named in a scenario.

From Python pass an object with ``interval``, ``window`` and ``decide(obs)`` to
``capsim.run(scenario, policy=MyPolicy())``. A scenario may name a class by import path
(``policy: custom``, ``path: mypkg.policies:Mine``, ``params: {...}`` passed to its
constructor), but a scenario file never runs code silently: it is imported only when
the user opts in (``--allow-code``, or ``allow_code=True`` in Python), and only a policy:
a class with a ``decide`` method, or a factory function annotated to return such a class
(``def make(...) -> MyPolicy``). Both are checked before anything is called, so a path
such as ``subprocess:Popen`` or ``os:system`` is refused, not run.
"""
from __future__ import annotations

import importlib
import inspect
import typing
from typing import Any, Literal

from pydantic import Field, field_validator

from capsim.models.autoscaling.base import Policy
from capsim.models.autoscaling.fixed import Bounded

__all__ = ["CustomConfig", "CodeNotAllowed", "NotAPolicy", "policy_class"]


class CodeNotAllowed(Exception):
    """A scenario names Python code and the user did not pass --allow-code."""


class NotAPolicy(CodeNotAllowed):
    """``autoscaler.path`` names something that is not a policy class or factory, or it failed."""


def _is_policy_class(obj) -> bool:
    return inspect.isclass(obj) and callable(getattr(obj, "decide", None))


def policy_class(obj):
    """The policy class ``obj`` is or makes (a class with ``decide``, or a plain function
    annotated to return one), or None: decided without calling anything."""
    if _is_policy_class(obj):
        return obj
    if inspect.isfunction(obj):
        try:
            returned = typing.get_type_hints(obj).get("return")
        except Exception:            # noqa: BLE001 (an annotation that does not resolve)
            return None
        return returned if _is_policy_class(returned) else None
    return None


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
        try:
            obj = getattr(importlib.import_module(module), name)
        except Exception as exc:     # noqa: BLE001 (ImportError, AttributeError, or the module failing)
            raise NotAPolicy(f"autoscaler.path: cannot import {self.path}: {type(exc).__name__}: {exc}") from None
        if policy_class(obj) is None:
            raise NotAPolicy(f"autoscaler.path: {self.path} is not a policy class or factory: expected a class with a "
                             "decide(obs) method, or a function annotated to return one (def make(...) -> MyPolicy)")
        try:
            policy = obj(**self.params)
        except Exception as exc:     # noqa: BLE001 (the user's constructor)
            raise NotAPolicy(f"autoscaler.params: {self.path}(**params) failed: {type(exc).__name__}: {exc}") from None
        missing = [a for a in ("interval", "window", "decide") if not hasattr(policy, a)]
        if missing:
            raise NotAPolicy(f"autoscaler.path: {self.path}: a policy needs {', '.join(missing)}")
        return policy
