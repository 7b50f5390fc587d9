"""Socket.io connections: one per user session, sticky to the instance it connected to.

A session opens its socket on the instance the load balancer picks when it starts and
keeps it for its whole life, even after new instances join (so a scale-out leaves new
instances without sockets until sessions turn over). Requests to ``endpoints`` travel
over the socket, so they go to that instance; other requests are plain HTTP, balanced
per request. Each socket costs ``memory_mb`` and a ping every ``ping_interval`` costs
``ping_cpu`` (charged as background CPU work each second). When its instance stops or
crashes, the session reconnects after ``reconnect_delay`` (Socket.io: 1 s +-50%) to an
instance the load balancer picks, and sends ``reconnect_flow`` (auth, sessions) again:
the reconnect burst after a scale-in or a crash.
"""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from capsim.models.distributions import Distribution, Uniform, draws
from capsim.models.units import Duration, NonNegative, PositiveDuration

__all__ = ["SocketsConfig", "Sockets"]


class SocketsConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    endpoints: list[str] | None = Field(None, description="endpoints whose requests travel over the session's "
                                        "socket (sticky); default: presence, if the scenario has it")
    ping_interval: PositiveDuration = Field(25.0, description="Socket.io pingInterval (seed: 25 s)")
    ping_cpu: Duration = Field(0.00005, description="CPU per ping")
    memory_mb: NonNegative = Field(0.1, description="instance memory per open socket")
    reconnect_delay: Distribution = Field(Uniform(low=0.5, high=1.5), description="before a dropped session reconnects")
    reconnect_flow: list[str] | None = Field(None, description="requests a reconnecting session sends; "
                                             "default: auth then sessions, those the scenario has")

    def resolved(self, names) -> tuple[list[str], list[str]]:
        """(socket endpoints, reconnect flow) with the defaults applied to endpoint ``names``."""
        eps = self.endpoints if self.endpoints is not None else [n for n in ("presence",) if n in names]
        flow = self.reconnect_flow if self.reconnect_flow is not None else [n for n in ("auth", "sessions") if n in names]
        return eps, flow


class Sockets:
    """Where each session's socket lives; reconnects; ping load."""

    def __init__(self, kernel, config: SocketsConfig, fleet, route, factory, rng):
        self.kernel, self.config, self.fleet = kernel, config, fleet
        self.route, self.factory = route, factory       # factory: the reconnects' own draws
        self._delay = draws(config.reconnect_delay, rng)
        self._eps, flow = config.resolved(factory.index)
        self._flow = [factory.index[n] for n in flow]
        self.sessions = None                             # the SessionSource (set by the model)
        self.reconnects = 0
        self._on_reconnect, self._on_retry = self._reconnect, self._retry

    def endpoint_set(self, index: dict[str, int]) -> frozenset:
        return frozenset(index[n] for n in self._eps)

    # -- session life ------------------------------------------------------------------
    def connect(self, s, retry=None) -> bool:
        """``s`` = [session id, position, instance]: open its socket on a ready instance;
        with none ready, Socket.io tries again (``retry``) after ``reconnect_delay``."""
        lb = self.fleet.lb
        if not lb.ready:
            self.kernel.after(next(self._delay), retry or self._on_retry, s)
            return False
        inst = s[2] = lb.pick()
        inst.sockets += 1
        return True

    def _retry(self, s) -> None:
        if s[1] >= 0 and s[2] is None:
            self.connect(s)

    def disconnect(self, s) -> None:
        if s[2] is not None:
            s[2].sockets -= 1
            s[2] = None

    def send(self, req, s) -> None:
        """A socket request goes to the session's instance while that one is up."""
        inst = s[2]
        if inst is None or inst not in self.fleet.lb.ready:
            self.route(req)
            return
        self.route(req, inst, s[0])

    # -- instance lost ---------------------------------------------------------------------
    def lost(self, inst) -> None:
        """``inst`` left the load balancer (stopped, crashed): its sessions reconnect."""
        if self.sessions is None:
            return
        for s in self.sessions.active:
            if s[2] is inst:
                inst.sockets -= 1
                s[2] = None
                self.kernel.after(next(self._delay), self._on_reconnect, s)

    def _reconnect(self, s) -> None:
        if s[1] < 0 or s[2] is not None:
            return                                       # the session ended, or is back
        if not self.connect(s, self._on_reconnect):
            return                                       # retried later, counted when it connects
        self.reconnects += 1
        now = self.kernel.now
        for ep in self._flow:
            self.route(self.factory.make(now, ep, s[0], None))

    # -- ping load -------------------------------------------------------------------------
    def process(self, env, tick: float = 1.0):
        c = self.config
        per_socket = c.ping_cpu * tick / c.ping_interval
        while True:
            yield env.timeout(tick)
            for inst in self.fleet.lb.ready:
                if inst.sockets:
                    inst.background(inst.sockets * per_socket)
