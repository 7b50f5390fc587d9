"""An Artillery-shaped ``report.json`` from any capsim run, measured as Artillery measures.

Facts carried over from Artillery 2.0 (``lib/core/ssms.ts``, ``lib/core/engine_http.ts``,
``lib/core/runner.ts``, ``lib/cmds/run.ts`` and its DDSketch fork), not its code:

- results come in 10 s periods aligned to the wall clock (``period`` = the period's start
  in epoch ms, as a string; the aggregate's, the last period's, as a number); ``intermediate`` holds each period with any metric, ``aggregate`` all of them;
- ``http.requests`` counts a request when it is sent, ``http.codes.<code>``, ``http.responses``
  and the ``http.response_time`` summary when its response arrives; a request without a
  response counts ``errors.<code>`` (capsim: a crash or shutdown is ``ECONNRESET``, a client
  timeout ``ETIMEDOUT``) and fails its virtual user;
- ``http.response_time`` runs from the request sent to the first byte of the reply, from two
  whole-millisecond clock readings: a latency of L ms reads floor(L) or floor(L) + 1, the latter
  with probability L - floor(L) (a uniform clock phase: named stream ``artillery.clock``);
- summaries (``min, max, count, mean, p50, median, p75, p90, p95, p99, p999``) come from a
  DDSketch of relative accuracy 0.01 (value of key k: 2 gamma^k / (1 + gamma); quantile q
  at rank q (n - 1); zeros in their own bucket), every figure rounded to one decimal;
  ``histograms`` repeats ``summaries`` in the file;
- ``http.request_rate`` of a period: its requests over max(last - first, 1 s), rounded; the
  aggregate's: the mean of the periods' rates, rounded;
- ``vusers.created`` / ``vusers.created_by_name.<flow>`` when a virtual user's first request is
  made, ``vusers.completed`` (and ``vusers.failed`` 0) and ``vusers.session_length`` (ms) when
  its flow ends, ``vusers.failed`` 1 when a request of it gets no response.
  Only flow sources (Artillery phases with a flow) make virtual users.

``http.downloaded_bytes`` is not modelled (capsim has no response sizes). Per-endpoint figures
follow the metrics-by-endpoint plugin that Artillery 2 loads by default
(``plugins.metrics-by-endpoint.<url>.codes.<code>``, ``...response_time.<url>``).
"""
from __future__ import annotations

import math
from pathlib import Path

from capsim.models.distributions import uniforms
from capsim.models.request import CRASHED, OUTCOMES, TERMINATED, TIMEOUT
from capsim.results.files import safe_dir, write_json

__all__ = ["ArtilleryRecorder", "Sketch", "HTTP_CODES", "PERIOD_MS"]

PERIOD_MS = 10_000
NO_RESPONSE = {CRASHED: "ECONNRESET", TERMINATED: "ECONNRESET", TIMEOUT: "ETIMEDOUT"}
# the HTTP status a client sees for each capsim outcome that has a response
HTTP_CODES = {"ok": 200, "pool_timeout": 503, "db_refused": 500, "unavailable": 503, "db_error": 500,
              "rate_limited": 429, "circuit_open": 503, "shed": 503}
CODE_OF = {OUTCOMES.index(name): code for name, code in HTTP_CODES.items()}
QUANTILES = (("p50", 0.5), ("median", 0.5), ("p75", 0.75), ("p90", 0.9), ("p95", 0.95), ("p99", 0.99),
             ("p999", 0.999))


def _round(x: float, decimals: int = 1) -> float:
    """JavaScript's Math.round(x * 10^d) / 10^d (halves round up)."""
    m = 10 ** decimals
    v = math.floor(x * m + 0.5) / m
    return int(v) if v == int(v) else v


class Sketch:
    """Artillery's DDSketch (relative accuracy 0.01, logarithmic mapping) of one metric."""

    ACCURACY = 0.01

    def __init__(self):
        mantissa = 2 * self.ACCURACY / (1 - self.ACCURACY)
        self.gamma = 1 + mantissa
        self.multiplier = math.log(2) / math.log1p(mantissa)
        self.bins: dict[int, int] = {}
        self.zeros = self.count = 0
        self.sum, self.min, self.max = 0.0, math.inf, -math.inf

    def add(self, v: float) -> None:
        if v > 0:
            k = math.ceil(math.log2(v) * self.multiplier)
            self.bins[k] = self.bins.get(k, 0) + 1
        else:
            self.zeros += 1
        self.count += 1
        self.sum += v
        self.min, self.max = min(self.min, v), max(self.max, v)

    def merge(self, other: "Sketch") -> None:
        for k, c in other.bins.items():
            self.bins[k] = self.bins.get(k, 0) + c
        self.zeros += other.zeros
        self.count += other.count
        self.sum += other.sum
        self.min, self.max = min(self.min, other.min), max(self.max, other.max)

    def quantile(self, q: float) -> float:
        rank = q * (self.count - 1)
        if rank < self.zeros:
            return 0.0
        run = self.zeros
        for k in sorted(self.bins):
            run += self.bins[k]
            if run > rank:
                return 2 ** (k / self.multiplier) * 2 / (1 + self.gamma)
        return self.max

    def summary(self) -> dict:
        out = {"min": _round(self.min), "max": _round(self.max), "count": self.count,
               "mean": _round(self.sum / self.count)}
        out.update({name: _round(self.quantile(q)) for name, q in QUANTILES})
        return out


class _Period:
    def __init__(self, start: int):
        self.start = start
        self.counters: dict[str, int] = {}
        self.sketches: dict[str, Sketch] = {}
        self.first_counter = self.last_counter = self.first_hist = self.last_hist = None
        self.req_first = self.req_last = None
        self.req_count = 0

    def count(self, name: str, ms: int, n: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + n
        self.first_counter = ms if self.first_counter is None else self.first_counter
        self.last_counter = ms

    def observe(self, name: str, ms: int, value: float) -> None:
        self.sketches.setdefault(name, Sketch()).add(value)
        self.first_hist = ms if self.first_hist is None else self.first_hist
        self.last_hist = ms

    def request(self, ms: int) -> None:
        self.req_first = ms if self.req_first is None else self.req_first
        self.req_last = ms
        self.req_count += 1

    def rate(self) -> int | None:
        if not self.req_count:
            return None
        return _round(self.req_count / (max(self.req_last - self.req_first, 1000) / 1000), 0)


class ArtilleryRecorder:
    """Watches a ``Model`` (``attach`` before ``run``) and writes Artillery's ``report.json``.

    ``start_ms``: the epoch millisecond at simulated t = 0 (default: ``workload.start`` read as
    UTC), which places the run in Artillery's wall-clock 10 s periods. ``urls``: endpoint name ->
    URL (default: the open-loop sources' ``urls``, as read from a script, else ``/<name>``).
    """

    def __init__(self, start_ms: int | None = None, urls: dict[str, str] | None = None):
        self.start_ms, self.urls = start_ms, dict(urls or {})
        self.periods: dict[int, _Period] = {}
        self.users: dict[tuple, float] = {}   # (source id, client) -> created at (s)

    def attach(self, model) -> "ArtilleryRecorder":
        sc = model.scenario
        if self.start_ms is None:
            from datetime import timezone
            when = sc.workload.start
            when = when if when.tzinfo is not None else when.replace(tzinfo=timezone.utc)
            self.start_ms = int(round(when.timestamp() * 1000))
        names = list(sc.workload.endpoints)
        urls = {k: v for ol in sc.workload.open_loop for k, v in ol.urls.items()}
        urls.update(self.urls)
        self._url = [urls.get(n, f"/{n}") for n in names]
        self._clock = uniforms(model.streams.get("artillery.clock"))
        self._metrics = model.metrics
        model.watch(on_done=self._done, on_arrive=self._arrive)
        return self

    # -- per request -----------------------------------------------------------------------
    def _ms(self, t: float) -> int:
        return self.start_ms + math.floor(t * 1000)

    def _period(self, ms: int) -> _Period:
        start = ms - ms % PERIOD_MS
        p = self.periods.get(start)
        if p is None:
            p = self.periods[start] = _Period(start)
        return p

    def _arrive(self, req) -> None:
        ms = self._ms(req.t0)
        p = self._period(ms)
        if req.flow is not None and req.flow[1] == 1:
            src = req.flow[0]
            self.users[(id(src), req.client)] = req.t0
            p.count("vusers.created_by_name." + src.flow_names[req.flow[2]], ms)
            p.count("vusers.created", ms)
        p.count("http.requests", ms)
        p.request(ms)

    def _done(self, req, outcome: int, now: float) -> None:
        if outcome in NO_RESPONSE:
            ms = self._ms(now)
            p = self._period(ms)
            p.count(f"errors.{NO_RESPONSE[outcome]}", ms)
            if req.flow is not None:
                self.users.pop((id(req.flow[0]), req.client), None)
                p.count("vusers.failed", ms)
            return
        lat = self._metrics.last_latency
        t_resp = req.t0 + lat
        ms = self._ms(t_resp)
        p = self._period(ms)
        value = lat * 1000
        whole = math.floor(value)
        value = whole + (1 if next(self._clock) < value - whole else 0)
        code, url = CODE_OF[outcome], self._url[req.endpoint]
        p.count(f"http.codes.{code}", ms)
        p.count("http.responses", ms)
        p.count(f"plugins.metrics-by-endpoint.{url}.codes.{code}", ms)
        p.observe("http.response_time", ms, value)
        p.observe(f"http.response_time.{code // 100}xx", ms, value)
        p.observe(f"plugins.metrics-by-endpoint.response_time.{url}", ms, value)
        if req.flow is not None and req.flow[0].last_step(req):
            created = self.users.pop((id(req.flow[0]), req.client), None)
            p.count("vusers.failed", ms, 0)
            p.count("vusers.completed", ms)
            if created is not None:
                p.observe("vusers.session_length", ms, (t_resp - created) * 1000)

    # -- the report -------------------------------------------------------------------------
    @staticmethod
    def _period_json(p: _Period) -> dict:
        summaries = {k: s.summary() for k, s in sorted(p.sketches.items())}
        firsts = [x for x in (p.first_counter, p.first_hist) if x is not None]
        lasts = [x for x in (p.last_counter, p.last_hist) if x is not None]
        rate = p.rate()
        out = {"period": str(p.start), "counters": dict(p.counters), "rates": {} if rate is None else {"http.request_rate": rate}}
        if rate is not None:
            out["http.request_rate"] = rate
        out.update({"firstCounterAt": p.first_counter, "firstHistogramAt": p.first_hist,
                    "lastCounterAt": p.last_counter, "lastHistogramAt": p.last_hist,
                    "firstMetricAt": min(firsts) if firsts else None, "lastMetricAt": max(lasts) if lasts else None,
                    "summaries": summaries, "histograms": summaries})
        return out

    def report(self) -> dict:
        """``{"aggregate": ..., "intermediate": [...]}`` as ``artillery run --output`` writes it."""
        periods = [self.periods[k] for k in sorted(self.periods)]
        inter = [self._period_json(p) for p in periods]
        agg = _Period(max((p.start for p in periods), default=self.start_ms or 0))
        for p in periods:
            for k, v in p.counters.items():
                agg.counters[k] = agg.counters.get(k, 0) + v
            for k, s in p.sketches.items():
                agg.sketches.setdefault(k, Sketch()).merge(s)
        out = self._period_json(agg)
        out["period"] = agg.start                # a number in the aggregate, a string in each period
        out.pop("http.request_rate", None)
        rates = [p.rate() for p in periods if p.rate() is not None]
        out["rates"] = {"http.request_rate": _round(sum(rates) / len(rates), 0)} if rates else {}
        for key, pick in (("firstCounterAt", min), ("firstHistogramAt", min), ("lastCounterAt", max),
                          ("lastHistogramAt", max), ("firstMetricAt", min), ("lastMetricAt", max)):
            vals = [x[key] for x in inter if x[key] is not None]
            out[key] = pick(vals) if vals else None
        return {"aggregate": out, "intermediate": inter}

    def write(self, path) -> Path:
        path = Path(path)
        safe_dir(path.parent)
        return write_json(path, self.report())     # atomic; a non-finite number is refused
