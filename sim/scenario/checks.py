"""Configuration checks: contradictions a simulation would reveal the hard way.

Each warning starts with the dotted path of the field it is about (``capsim.scenario.placing``
finds its FILE:LINE:COL), shows the arithmetic and suggests a fix. They do not stop a run
(``capsim validate`` prints them and exits 0). Things timed outside the run:
``capsim.scenario.timing``.
"""
from __future__ import annotations

from capsim.models.distributions import Uniform
from capsim.scenario.timing import outside_horizon

__all__ = ["warnings"]


def warnings(sc) -> list[str]:
    out: list[str] = []
    for check in (_pool_vs_max_connections, _dynamic_pool, _flapping, _cooldown_vs_provisioning,
                  _rate_limits_vs_users, _memory_rate_store, _cpu_ceiling, outside_horizon):
        out += check(sc)
    return out


def _max_instances(sc) -> int:
    return sc.autoscaler.max_instances if sc.autoscaler is not None else sc.instances.count


def _pool_vs_max_connections(sc) -> list[str]:
    pool, cap, procs = sc.database.pool, sc.database.max_connections, sc.instances.processes
    n = _max_instances(sc) * procs          # one pg.Pool per Node process
    if pool.policy != "static" or n * pool.max <= cap:
        return []
    who = f"{_max_instances(sc)} instances" if procs == 1 else f"{_max_instances(sc)} instances x {procs} processes"
    return [f"database.pool.max: up to {who} x pool max {pool.max} = {n * pool.max} connections "
            f"> database.max_connections {cap}; under load, opens beyond {cap} fail (db_refused). "
            f"Fix: pool.max <= {cap // n}, or fewer instances, or a larger max_connections / a pooler"]


def _dynamic_pool(sc) -> list[str]:
    pool, n, cap = sc.database.pool, _max_instances(sc), sc.database.max_connections
    if pool.policy != "dynamic":
        return []
    each = min(pool.per_instance * n, pool.cap)
    if n * each <= cap:
        return []
    return [f"database.pool.policy: dynamic (getPoolConfig) gives each of {n} instances max "
            f"min({pool.per_instance} x {n}, {pool.cap}) = {each}, so {n} x {each} = {n * each} "
            f"> database.max_connections {cap}. Fix: divide instead, max = {cap} // instances "
            f"({cap // n} at {n}), i.e. a static pool.max of {cap // n}"]


def _flapping(sc) -> list[str]:
    a = sc.autoscaler
    if a is None or a.policy != "threshold" or a.max_instances < 2:
        return []
    n = max(2, a.min_instances + 1)
    after = a.cpu_down * n / (n - 1)
    if after < a.cpu_up:
        return []
    return [f"autoscaler.cpu_down: scaling {n} -> {n - 1} at cpu just under {a.cpu_down:.0%} leaves "
            f"{a.cpu_down:.0%} x {n}/{n - 1} = {after:.0%} >= cpu_up {a.cpu_up:.0%}, which scales up again "
            f"(flapping). Fix: cpu_down < {a.cpu_up * (n - 1) / n:.0%}"]


def _cooldown_vs_provisioning(sc) -> list[str]:
    a = sc.autoscaler
    cooldown = getattr(a, "cooldown", None)
    if cooldown is None:
        return []
    dist = sc.instances.provisioning
    slowest = dist.high if isinstance(dist, Uniform) else dist.mean
    if cooldown >= slowest:
        return []
    return [f"autoscaler.cooldown: {cooldown:g} s < provisioning of up to {slowest:g} s "
            f"(instances.provisioning): the policy acts again before the instances it started take "
            f"traffic, so it over-scales. Fix: cooldown >= {slowest:g} s"]


def _rate_limits_vs_users(sc) -> list[str]:
    rl, ss = sc.rate_limit, sc.workload.sessions
    if rl is None or ss is None:
        return []
    eps = sc.workload.endpoints
    total = sum(e.weight for e in eps.values())
    out = []
    for tier, limit in rl.limits.items():
        share = sum(e.weight for e in eps.values() if e.rate_limit_tier == tier) / total
        sent = ss.request_rate * rl.window * share
        if sent > limit:
            out.append(f"rate_limit.limits.{tier}: a user at {ss.request_rate:g}/s sends {ss.request_rate:g} x "
                       f"{rl.window:g} s x {share:.0%} = {sent:.0f} {tier} requests per window > limit {limit}, "
                       f"so about {1 - limit / sent:.0%} of them get 429 (one instance or a shared store). "
                       f"Fix: limit >= {int(sent) + 1}, or fewer requests per user")
    return out


def _memory_rate_store(sc) -> list[str]:
    rl, n = sc.rate_limit, _max_instances(sc)
    if rl is None or rl.store != "memory" or n < 2:
        return []
    tier, limit = next(iter(rl.limits.items()))
    return [f"rate_limit.store: memory keeps a counter per instance; with round robin over up to {n} instances "
            f"a client gets up to {n} x its limit per window ({tier}: {n} x {limit} = {n * limit}). "
            f"Fix: store: redis (shared)"]


def _cpu_targets(a) -> list[tuple[str, float]]:
    """(field, CPU level as a fraction) of each CPU rule that needs the CPU to rise to act."""
    if a is None:
        return []
    if a.policy == "threshold":
        return [("autoscaler.cpu_up", a.cpu_up)]
    if a.policy == "target" and a.cpu_target is not None:
        return [("autoscaler.cpu_target", a.cpu_target)]
    if a.policy == "hpa":
        return [(f"autoscaler.metrics[{i}].target", m.target / 100) for i, m in enumerate(a.metrics) if m.type == "cpu"]
    if a.policy == "step" and a.metric == "cpu" and a.comparison == "above":
        return [("autoscaler.threshold", a.threshold / 100)]
    return []


def _cpu_ceiling(sc) -> list[str]:
    """A CPU rule the platform's CPU metric can never reach: one Node process uses at most one vCPU."""
    ic = sc.instances
    plan = sc.pricing.plans[ic.plan]
    threads = ic.processes * ic.threads
    ceiling = min(1.0, min(1.0, plan.vcpus / threads) * threads * (1 + ic.event_loop.helper_cpu) / plan.vcpus)
    out = []
    for name, level in _cpu_targets(sc.autoscaler):
        if level >= ceiling:
            out.append(f"{name}: {level:.0%} CPU cannot be reached: {ic.processes} Node process(es) x {ic.threads} "
                       f"thread(s) on the {ic.plan} plan's {plan.vcpus:g} vCPUs show at most {ceiling:.0%} "
                       f"(each event loop uses one vCPU at most; helper threads add "
                       f"{ic.event_loop.helper_cpu:.0%}), so this rule never scales up and a saturated instance "
                       f"queues instead. Fix: instances.processes: {max(1, int(plan.vcpus))} (cluster/PM2), a plan "
                       f"with fewer vCPUs, or a level below {ceiling:.0%}")
    return out
