"""A stream of any length runs in constant memory (issue 11): the simulator keeps only what the
loader would read (active lanes, live trades, unended locks) and tallies."""
import tracemalloc

from lanes.simulator import configs, runner, streams


def peak_bytes(setting, count):
    source = streams.RandomSource(count, 0.5, 0.05, symbols=3, seed=1, expiry_seconds=150)
    tracemalloc.start()
    try:
        runner.simulate(setting, source.signals(), curve=True)  # a generator: the rows are never all held
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_peak_memory_does_not_grow_with_the_stream():
    setting = configs.build(configs.start_from(), {"concurrent_trading_enabled": "true", "max_exhausted_lanes": "3"})
    runner.simulate(setting, streams.RandomSource(2000, 0.5, seed=2).signals())  # warm the caches
    short, long = peak_bytes(setting, 2_500), peak_bytes(setting, 25_000)
    assert long < short + 256 * 1024, (short, long)
