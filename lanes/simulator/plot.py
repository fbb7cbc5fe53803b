"""``--plot FILE.png``: each setting's equity curve (cumulative net profit) above its drawdown below
the running peak, on the stream's clock (matplotlib, Agg backend: no display needed)."""
from __future__ import annotations

from datetime import datetime, timezone as dt_timezone

from .runner import Result


def plot(results: list[Result], path: str, *, title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, (equity, drawdown) = pyplot.subplots(
        2, 1, sharex=True, figsize=(11, 7), gridspec_kw={"height_ratios": [2, 1]}
    )
    for result in results:
        points = result.curve.points if result.curve is not None else []
        times = [datetime.fromtimestamp(t, dt_timezone.utc) for t, _, _ in points]
        label = result.setting.label()
        equity.plot(times, [value for _, value, _ in points], label=label, linewidth=1)
        drawdown.plot(times, [-fall for _, _, fall in points], label=label, linewidth=1)
    equity.set_ylabel("net profit")
    equity.axhline(0, color="grey", linewidth=0.5)
    equity.legend(fontsize="small", loc="best")
    equity.set_title(title or "Equity curves")
    drawdown.set_ylabel("drawdown")
    drawdown.set_xlabel("stream time (UTC)")
    figure.autofmt_xdate()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)
