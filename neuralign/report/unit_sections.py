"""Report sections of the unit-level and readout analyses (``result.analyses``, written by
:mod:`neuralign.offline.unit_analysis`): tables of the best units, redundancy and readout
tests (their figures are embedded by the "Further analyses" section)."""

from __future__ import annotations

import html


def _table(head: list[str], rows: list[list[str]]) -> str:
    return ('<table class="table table-sm table-striped"><thead><tr>'
            + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr></thead><tbody>"
            + "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
            + "</tbody></table>")


def _f(x, nd: int = 3) -> str:
    try:
        return f"{float(x):.{nd}f}"
    except (TypeError, ValueError):
        return "-"


def units_html(result, extra: dict) -> str | None:
    """Best units per layer (polarity, peak latency, r), units for 90%, planted recovery.

    Parameters
    ----------
    result : AlignmentResult
        The maps (``result.analyses["units"]``).
    extra : dict
        The record of the run (unused).

    Returns
    -------
    str | None
        HTML, or ``None`` without a unit-level analysis.
    """
    u = (getattr(result, "analyses", None) or {}).get("units")
    if not u:
        return None
    parts = []
    for layer, d in u["layers"].items():
        rows = [[str(b["unit"]), "+" if b["polarity"] > 0 else "-",
                 _f(b["peak_latency_s"] * 1000, 0), _f(b["peak_r"])]
                for b in d["best_units"][:10]]
        red = d.get("redundancy") or {}
        parts.append(f"<h4>{html.escape(layer)} ({d.get('n_units', '?')} units)</h4>"
                     f"<p>Units needed for 90% of the layer's held-out r²: "
                     f"{red.get('n_units_90', '-')} (around {_f(red.get('peak_latency_s', 0) * 1000, 0)}"
                     " ms).</p>"
                     + _table(["unit", "polarity", "peak latency (ms)", "peak r (channel mean)"],
                              rows))
    p = u.get("planted")
    if p:
        parts.append(f"<p class=\"alert alert-info\">Planted units {p['planted_units']}: found "
                     f"{p['found_units']}, polarity right for {p['polarity_correct']} of "
                     f"{p['n_planted']}, latency error {_f(p['latency_mae_ms'], 0)} ms: "
                     + ("recovered" if p["recovered"] else "not recovered") + ".</p>")
    return ("<p>Held-out univariate encoding r of every unit (one feature dimension) per "
            "channel x time; polarity: the sign of the training relation. Files: "
            + ", ".join(html.escape(f) for f in u.get("files", [])) + ".</p>"
            + "".join(parts))


def readouts_html(result, extra: dict) -> str | None:
    """Held-out r of every readout and its paired test against ridge.

    Parameters
    ----------
    result : AlignmentResult
        The maps (``result.analyses["readouts"]``).
    extra : dict
        The record of the run (unused).

    Returns
    -------
    str | None
        HTML, or ``None`` without a readout comparison.
    """
    ro = (getattr(result, "analyses", None) or {}).get("readouts")
    if not ro:
        return None
    parts = []
    for layer, d in ro["layers"].items():
        rows = [[html.escape(k), _f(v), "", "", ""] for k, v in d["mean_r"].items()
                if k == "ridge"]
        for k, v in d["vs_ridge"].items():
            rows.append([html.escape(k), _f(d["mean_r"].get(k)), _f(v["diff"]),
                         f"{_f(v['ci'][0])} to {_f(v['ci'][1])}", _f(v["p"], 4)])
        parts.append(f"<h4>{html.escape(layer)}</h4>"
                     + _table(["readout", "mean r", "minus ridge", "95% CI", "p"], rows))
    return (f"<p>Every readout scored on the same held-out stimuli as ridge; {html.escape(ro['test'])}"
            f" ({ro.get('n_boot')} resamples).</p>" + "".join(parts))
