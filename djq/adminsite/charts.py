"""The dashboard's chart as geometry for a server-rendered SVG (no JavaScript library, no CDN):
stacked bars of succeeded and failed jobs per minute."""

from __future__ import annotations

import datetime as dt

WIDTH, HEIGHT = 760, 190
LEFT, RIGHT, TOP, BOTTOM = 44, 8, 10, 24


def nice_ceiling(value: float) -> int:
    """The smallest 1, 2 or 5 × 10^k that is >= value (at least 1): a readable axis top."""
    step = 1
    while True:
        for m in (1, 2, 5):
            if m * step >= value:
                return m * step
        step *= 10


def bar_chart(
    series: list[tuple[dt.datetime, int, int]],
    fmt: str = "%H:%M",
    every: int = 10,
    labels: tuple[str, str] = ("succeeded", "failed"),
) -> dict:
    """``series``: (slot, succeeded, failed), oldest first (or two other stacked figures, named
    by ``labels``); ``fmt`` labels a slot, one label every ``every`` slots. Returns what the
    template draws."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    top = nice_ceiling(max((ok + bad for _, ok, bad in series), default=0))
    slot = plot_w / max(len(series), 1)
    bars = []
    for i, (minute, ok, bad) in enumerate(series):
        h_ok, h_bad = plot_h * ok / top, plot_h * bad / top
        y_ok = TOP + plot_h - h_ok
        bars.append(
            {
                "x": round(LEFT + i * slot + 0.5, 2),
                "w": round(max(slot - 1.5, 1), 2),
                "y_ok": round(y_ok, 2),
                "h_ok": round(h_ok, 2),
                "y_bad": round(y_ok - h_bad, 2),
                "h_bad": round(h_bad, 2),
                "title": f"{minute.strftime(fmt)} UTC: {ok} {labels[0]}, {bad} {labels[1]}",
            }
        )
    yticks = [
        {"y": round(TOP + plot_h - plot_h * f, 2), "label": _short(top * f)} for f in (0, 0.5, 1)
    ]
    xlabels = [
        {"x": round(LEFT + i * slot + slot / 2, 2), "label": series[i][0].strftime(fmt)}
        for i in range(0, len(series), every)
    ]
    if series:
        xlabels.append({"x": round(LEFT + plot_w - slot / 2, 2), "label": "now"})
    empty = not any(b["h_ok"] or b["h_bad"] for b in bars)
    return {
        "width": WIDTH,
        "height": HEIGHT,
        "left": LEFT,
        "right": WIDTH - RIGHT,
        "top": TOP,
        "bottom": TOP + plot_h,
        "bars": bars,
        "yticks": yticks,
        "xlabels": xlabels,
        "label_y": HEIGHT - 6,
        "empty": empty,
    }


def _short(value: float) -> str:
    if value >= 1000:
        return f"{value / 1000:g}k"
    return f"{value:g}"
