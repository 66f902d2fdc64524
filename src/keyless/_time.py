"""Times as people read them, for explanations and the CLI."""

from __future__ import annotations

import datetime as dt

__all__ = ["human_time"]


def human_time(epoch: float, now: float) -> str:
    """``2024-05-01 12:00:00Z (3m 20s ago)``."""
    moment = dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    delta = epoch - now
    if abs(delta) < 1:
        return f"{moment} (now)"
    return f"{moment} ({_duration(abs(delta))} {'from now' if delta > 0 else 'ago'})"


def _duration(seconds: float) -> str:
    days, rest = divmod(round(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{days}d" if days else "", f"{hours}h" if hours else "", f"{minutes}m" if minutes else ""]
    parts.append(f"{secs}s" if secs or not any(parts) else "")
    return " ".join(p for p in parts if p)
