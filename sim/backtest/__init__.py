"""Backtests: replay a request log's own traffic through a scenario and put measured beside
simulated per interval (``capsim backtest LOG --scenario S``).

    from capsim.backtest import read_log, backtest
    bt = backtest(read_log("runs/E1_u0.50_r1.csv.gz"), scenario, out="capsim-out/bt", interval=10)
    print(bt.format()); bt.table()
"""
from __future__ import annotations

from capsim.backtest.intervals import IntervalRecorder, edges_of, measured_intervals
from capsim.backtest.logs import LogError, read_log, route_map, write_trace
from capsim.backtest.page import backtest_page, backtest_page_from
from capsim.backtest.run import Backtest, backtest, replay_scenario

__all__ = ["read_log", "route_map", "write_trace", "LogError", "IntervalRecorder", "edges_of", "measured_intervals",
           "Backtest", "backtest", "replay_scenario", "backtest_page", "backtest_page_from"]
