"""The shadow (or replay) report as one self-contained HTML page: agreement per field as bars
with their 95 % intervals, the reply-similarity histogram, the worst conversations by hash, the
verdict. Inline SVG and CSS only: it opens offline, from a file or an email attachment, and
carries no values or message text (the report has none).
"""

from __future__ import annotations

from html import escape

from proxy._shadow_report import FieldAgreement, ShadowReport

_BAR_WIDTH = 360
_ROW = 24


def _agreement_chart(title: str, fields: list[FieldAgreement]) -> str:
    judged = [f for f in fields if f.agreement_pct is not None]
    if not judged:
        return f"<h2>{escape(title)}</h2><p>Nothing compared.</p>"
    height = _ROW * len(judged) + 10
    rows = []
    for index, field in enumerate(judged):
        y = index * _ROW + 4
        pct = field.agreement_pct or 0.0
        colour = "#2e7d32" if field.passes is not False else "#c62828"
        low, high = field.ci95_pct or (pct, pct)
        rows.append(
            f'<text x="0" y="{y + 14}">{escape(field.field)}</text>'
            f'<rect x="120" y="{y}" width="{_BAR_WIDTH}" height="16" fill="#eee"/>'
            f'<rect x="120" y="{y}" width="{_BAR_WIDTH * pct / 100:.1f}" height="16" '
            f'fill="{colour}"><title>{pct}% ({field.matches} of '
            f"{field.matches + field.mismatches})</title></rect>"
            f'<line x1="{120 + _BAR_WIDTH * low / 100:.1f}" x2="{120 + _BAR_WIDTH * high / 100:.1f}" '
            f'y1="{y + 8}" y2="{y + 8}" stroke="#000" stroke-width="2"/>'
        )
        if field.threshold_pct is not None:
            x = 120 + _BAR_WIDTH * field.threshold_pct / 100
            rows.append(
                f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{y - 2}" y2="{y + 18}" '
                'stroke="#555" stroke-dasharray="3,2"/>'
            )
        rows.append(f'<text x="{130 + _BAR_WIDTH}" y="{y + 14}">{pct}%</text>')
    return (
        f"<h2>{escape(title)}</h2>"
        f'<svg role="img" aria-label="{escape(title)}" width="{200 + _BAR_WIDTH}" '
        f'height="{height}" font-size="13">{"".join(rows)}</svg>'
    )


def _histogram(counts: list[int]) -> str:
    if not any(counts):
        return "<h2>Reply similarity</h2><p>No replies compared.</p>"
    top = max(counts)
    bars = []
    for index, count in enumerate(counts):
        height = 120 * count / top
        x = 30 + index * 40
        bars.append(
            f'<rect x="{x}" y="{130 - height:.1f}" width="34" height="{height:.1f}" '
            f'fill="#1565c0"><title>{index / 10:.1f}-{(index + 1) / 10:.1f}: {count}</title></rect>'
            f'<text x="{x}" y="146">{index / 10:.1f}</text>'
        )
    return (
        "<h2>Reply similarity</h2>"
        '<svg role="img" aria-label="reply similarity histogram" width="460" height="150" '
        f'font-size="11">{"".join(bars)}</svg>'
    )


def render_html(report: ShadowReport, title: str = "Shadow report") -> str:
    """The page, as text (UTF-8)."""
    worst = "".join(
        f"<tr><td><code>{escape(w.conversation)}</code></td><td>{w.mismatches}</td>"
        f"<td>{escape(', '.join(w.fields))}</td></tr>"
        for w in report.worst
    )
    reasons = "".join(f"<li>{escape(reason)}</li>" for reason in report.reasons)
    ready = report.verdict == "ready for more traffic"
    return (
        "<!doctype html><html lang=en><meta charset=utf-8>"
        f"<title>{escape(title)}</title>"
        "<style>body{font-family:sans-serif;max-width:760px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px}"
        ".ok{color:#2e7d32}.no{color:#c62828}</style>"
        f"<h1>{escape(title)}</h1>"
        f'<p class="{"ok" if ready else "no"}"><strong>Verdict: {escape(report.verdict)}'
        f"</strong></p><ul>{reasons}</ul>"
        f"<p>{report.conversations} conversations, {report.turns} turns, {report.leads} leads "
        f"compared; candidate errors: {report.candidate_errors}.</p>"
        + _agreement_chart("Agreement per field (turns)", report.fields)
        + _agreement_chart("Lead-level agreement per value", report.lead_fields)
        + _histogram(report.similarity_histogram)
        + "<h2>Conversations with the most disagreements</h2>"
        + (
            f"<table><tr><th>conversation (hash)</th><th>mismatches</th><th>fields</th></tr>"
            f"{worst}</table>"
            if worst
            else "<p>None.</p>"
        )
        + "<p><small>Bars: agreement where compared; black line: 95 % interval (Wilson); "
        "dashed: the threshold.</small></p></html>\n"
    )
