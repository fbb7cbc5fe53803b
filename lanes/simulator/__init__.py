"""The simulator of SPEC §12: the engine of §3–§11 run on a stream of signals, on in-memory state
with a simulated clock and no database writes, once per setting.

``streams`` turns a CSV file, an account's recorded trades, a random generator or OHLC prices into
``Signal`` rows (iterators: constant memory); ``configs`` builds the account and settings each run
starts from; ``runner`` replays a stream through ``lanes.engine`` and measures the results;
``batch`` runs several settings and the Monte Carlo runs over the cores; ``cli`` is ``python
manage.py martingale simulate`` and ``plot`` its ``--plot``.
"""
