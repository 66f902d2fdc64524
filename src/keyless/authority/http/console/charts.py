"""Small SVG pictures drawn on the server: no script, no inline style (the console's CSP allows
neither), presentation attributes and classes only. Each picture has a ``<title>`` and a
``<desc>`` for screen readers; the pages also show the numbers as a table."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

from keyless.authority.model import KeyState, SigningKeyRecord

__all__ = ["Bar", "bar_chart", "key_timeline"]


@dataclass(frozen=True, slots=True)
class Bar:
    start: float  # POSIX seconds
    issued: float
    refused: float


def _hhmm(t: float) -> str:
    return time.strftime("%H:%M", time.gmtime(t))


def bar_chart(bars: Sequence[Bar], *, title: str, width: int = 720, height: int = 180) -> Markup:
    """Issued (up) and refused (down) tokens per bucket, on one time axis."""
    top = max([b.issued for b in bars] + [1.0])
    bottom = max([b.refused for b in bars] + [1.0])
    plot_h = height - 40
    up_h = plot_h * top / (top + bottom)
    axis_y = 10 + up_h
    step = (width - 60) / max(len(bars), 1)
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-labelledby="chart-t chart-d">',
        f'<title id="chart-t">{escape(title)}</title>',
        f'<desc id="chart-d">{sum(b.issued for b in bars):.0f} tokens issued and '
        f"{sum(b.refused for b in bars):.0f} refused; bars above the axis are issued, below refused.</desc>",
        f'<line class="axis" x1="50" y1="{axis_y:.1f}" x2="{width - 10}" y2="{axis_y:.1f}"/>',
        f'<text class="tick" x="45" y="16" text-anchor="end">{top:.0f}</text>',
        f'<text class="tick" x="45" y="{10 + plot_h:.0f}" text-anchor="end">{bottom:.0f}</text>',
    ]
    for i, bar in enumerate(bars):
        x = 50 + i * step + 1
        w = max(step - 2, 1)
        if bar.issued:
            h = up_h * bar.issued / top
            parts.append(
                f'<rect class="issued" x="{x:.1f}" y="{axis_y - h:.1f}" width="{w:.1f}" height="{h:.1f}">'
                f"<title>{_hhmm(bar.start)}: {bar.issued:.0f} issued</title></rect>"
            )
        if bar.refused:
            h = (plot_h - up_h) * bar.refused / bottom
            parts.append(
                f'<rect class="refused" x="{x:.1f}" y="{axis_y:.1f}" width="{w:.1f}" height="{h:.1f}">'
                f"<title>{_hhmm(bar.start)}: {bar.refused:.0f} refused</title></rect>"
            )
        if i % max(len(bars) // 6, 1) == 0:
            parts.append(f'<text class="tick" x="{x:.1f}" y="{height - 6}">{_hhmm(bar.start)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 every text above is escaped, every number formatted


_STATE_CLASS = {KeyState.PENDING: "pending", KeyState.ACTIVE: "active", KeyState.RETIRED: "retired"}


def key_timeline(
    keys: Sequence[SigningKeyRecord], *, now: float, token_lifetime: float, width: int = 720
) -> Markup:
    """One row per signing key: published (from creation), signing (from activation), retired
    (published until every token it signed has expired), with a line at now."""
    if not keys:
        return Markup('<p class="muted">No signing keys.</p>')
    start = min([now - 3600.0] + [k.created_at for k in keys])
    end = max([now + (now - start) / 4] + [(k.retired_at or now) + token_lifetime for k in keys])
    span = max(end - start, 1.0)
    row = 22
    height = 30 + row * len(keys)

    def x(t: float) -> float:
        return 160 + (width - 170) * (t - start) / span

    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-labelledby="keys-t keys-d">',
        '<title id="keys-t">Signing key rotation timeline</title>',
        f'<desc id="keys-d">{len(keys)} keys: published, then signing, then retired until their tokens '
        "expire.</desc>",
    ]
    for i, key in enumerate(sorted(keys, key=lambda k: k.created_at)):
        y = 10 + i * row
        state = _STATE_CLASS.get(key.state, "pending")
        parts.append(f'<text class="tick" x="4" y="{y + 13}">{escape(key.kid[:12])}… ({state})</text>')
        published_end = key.activates_at if key.state != KeyState.PENDING else now
        parts.append(
            f'<rect class="published" x="{x(key.created_at):.1f}" y="{y}" '
            f'width="{max(x(published_end) - x(key.created_at), 1):.1f}" height="16"><title>published '
            f"{_hhmm(key.created_at)}</title></rect>"
        )
        if key.state != KeyState.PENDING:
            signing_end = key.retired_at or end  # a signing key goes on signing
            parts.append(
                f'<rect class="active" x="{x(key.activates_at):.1f}" y="{y}" '
                f'width="{max(x(signing_end) - x(key.activates_at), 1):.1f}" height="16"><title>signing from '
                f"{_hhmm(key.activates_at)}</title></rect>"
            )
        if key.retired_at is not None:
            parts.append(
                f'<rect class="retired" x="{x(key.retired_at):.1f}" y="{y}" '
                f'width="{max(x(key.retired_at + token_lifetime) - x(key.retired_at), 1):.1f}" height="16">'
                f"<title>retired {_hhmm(key.retired_at)}, published until its tokens expire</title></rect>"
            )
    parts.append(f'<line class="now" x1="{x(now):.1f}" y1="4" x2="{x(now):.1f}" y2="{height - 14}"/>')
    parts.append(f'<text class="tick" x="{x(now) + 3:.1f}" y="{height - 2}">now</text>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 every text above is escaped, every number formatted
