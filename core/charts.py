"""Charts drawn on the server as inline SVG: nothing is loaded from elsewhere, and no script runs (the CSP allows
scripts from our own origin only). The templates draw the axes and the polylines from the numbers here."""

from datetime import date


def daily_lines(
    days: list[tuple], *, series: tuple[str, ...] = ("sends", "opens", "clicks"), width=900, height=220, pad=30
) -> dict:
    """Polyline points for per-day series: `days` is [(day, value of series[0], value of series[1], ...), ...].

    The answer has one key per series name (its `points` string), plus the frame: width, height, pad, peak (the
    largest value, the top of the scale), baseline and up to 8 day labels.
    """
    peak = max([max(row[1:]) for row in days if len(row) > 1] or [0]) or 1
    step = (width - 2 * pad) / max(1, len(days) - 1)

    def points(index: int) -> str:
        return " ".join(
            f"{pad + i * step:.1f},{height - pad - (row[index] / peak) * (height - 2 * pad):.1f}"
            for i, row in enumerate(days)
        )

    labels = [(pad + i * step, _label(row[0])) for i, row in enumerate(days)]
    every = max(1, len(labels) // 8)
    chart = {
        "width": width,
        "height": height,
        "pad": pad,
        "peak": peak,
        "labels": labels[::every],
        "baseline": height - pad,
    }
    for index, name in enumerate(series, start=1):
        chart[name] = points(index)
    return chart


def _label(day) -> str:
    return day.strftime("%b %d") if isinstance(day, date) else str(day)
