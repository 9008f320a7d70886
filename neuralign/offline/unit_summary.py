"""What the unit-level and readout analyses say: the terminal lines and, on a unit-driven
simulated brain (:mod:`neuralign.sim.units`), how well the planted units were recovered."""

from __future__ import annotations

import numpy as np


def score_planted(truth: dict, rows: list) -> dict:
    """Are the planted units the best of their layer, with their signs and latencies?

    Parameters
    ----------
    truth : dict
        The ``units`` entry of a unit-driven simulation's ``planted.json``.
    rows : list of list
        The rows of ``units.csv`` (layer, unit, rank, best channel, best time, r, polarity,
        peak latency, channel-mean peak r, polarity at the peak).

    Returns
    -------
    dict
        Planted and found units, polarities right, latency error, ``recovered``.
    """
    mine = [r for r in rows if r[0] == truth["layer"]]
    by_unit = {r[1]: r for r in mine}
    planted = {int(u["unit"]): u for u in truth["units"]}
    ranked = sorted(mine, key=lambda r: -float(r[8]))  # channel-mean peak r
    found = [r[1] for r in ranked[:len(planted)]]
    # with one signed topography per unit the sign at the peak depends on the channel mean
    shared = truth.get("spatial", "shared") == "shared"
    pol_ok = [int(by_unit[u][9]) == int(t["sign"]) or not shared for u, t in planted.items()]
    err = [abs(float(by_unit[u][7]) - float(t["latency_s"])) * 1000 for u, t in planted.items()]
    ok = set(found) == set(planted) and all(pol_ok) and max(err) <= 20.0
    return {"layer": truth["layer"], "planted_units": sorted(planted), "found_units": found,
            "polarity_correct": int(sum(pol_ok)), "n_planted": len(planted),
            "latency_mae_ms": float(np.mean(err)), "recovered": bool(ok),
            "polarity_scored": shared,
            "criterion": "the best units by channel-mean peak r are the planted ones, every "
                         "polarity right (shared topography), every peak latency within 20 ms"}


def summary_lines(summary: dict) -> list[str]:
    """A few lines for the terminal: best units, units for 90%, readouts against ridge.

    Parameters
    ----------
    summary : dict
        What :func:`run_unit_analyses` returned.

    Returns
    -------
    list of str
    """
    lines = []
    for name, d in (summary.get("units") or {}).get("layers", {}).items():
        best = ", ".join(f"{b['unit']}{'+' if b['polarity'] > 0 else '-'}"
                         f"@{b['peak_latency_s'] * 1000:.0f}ms(r={b['peak_r']:.2f})"
                         for b in d["best_units"][:5])
        n90 = (d.get("redundancy") or {}).get("n_units_90")
        lines.append(f"units {name}: best {best}; units for 90% of the layer: {n90}")
    p = (summary.get("units") or {}).get("planted")
    if p:
        lines.append(f"planted units {p['planted_units']}: found {p['found_units']}, "
                     f"polarity {p['polarity_correct']}/{p['n_planted']}, latency error "
                     f"{p['latency_mae_ms']:.0f} ms -> "
                     + ("RECOVERED" if p["recovered"] else "NOT recovered"))
    for name, d in (summary.get("readouts") or {}).get("layers", {}).items():
        parts = [f"ridge r={d['mean_r']['ridge']:.3f}"]
        for k, v in d["vs_ridge"].items():
            parts.append(f"{k} {v['diff']:+.3f} (p={v['p']:.3f})")
        lines.append(f"readouts {name}: " + "; ".join(parts))
    return lines
