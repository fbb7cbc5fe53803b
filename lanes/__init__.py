"""Martingale lanes: the engine, its models, services, selectors, bot API and command line."""
