"""What a Node.js process does on its event loop besides running your handlers.

A Node process runs JavaScript on one thread: every piece of work between two awaits
is one task on the event loop, and tasks run one after another. Besides the handler's
own CPU slices, the loop does work per request (HTTP parsing, routing and middleware
before the handler; JSON and the write after it), per database or Redis round trip
(the driver sends the query and parses the reply), when it opens a pooled connection,
and once per wake-up when an event reaches a loop that was idle (leaving ``epoll_wait``,
timers, cold caches: amortised when the loop stays busy). All are CPU seconds of the
loop thread; they delay whatever queues behind them.

``helper_cpu`` is CPU of the process's other threads (garbage collection, the libuv
thread pool) as a share of the loop's busy time: it does not delay the loop, but the
platform's CPU metric sees it.
"""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from capsim.models.units import Duration, Real

__all__ = ["EventLoopConfig"]


class EventLoopConfig(BaseModel):
    """Event-loop CPU outside the handlers' slices (all default 0: the handler's slices only)."""
    model_config = ConfigDict(frozen=True, extra="forbid")
    request_cpu: Duration = Field(0.0, description="per request, before the handler: HTTP parse, routing, middleware")
    response_cpu: Duration = Field(0.0, description="per response, after the handler's last slice: JSON and the socket write "
                                                    "(error responses and 429s too)")
    query_cpu: Duration = Field(0.0, description="per database query or Redis command: the driver's send and reply parsing, "
                                                 "paid when the reply is handled")
    connect_cpu: Duration = Field(0.0, description="per new pooled connection, when it is ready (startup, authentication)")
    wakeup_cpu: Duration = Field(0.0, description="per wake-up: added to the first task that reaches an idle loop")
    helper_cpu: Real(ge=0, le=10) = Field(
        0.0, description="CPU of the process's other threads (GC, libuv pool) as a share of the loop's busy time; "
                         "counted in the platform CPU metric, never delays the loop")

    @property
    def empty(self) -> bool:
        return not (self.request_cpu or self.response_cpu or self.query_cpu or self.connect_cpu or self.wakeup_cpu)
