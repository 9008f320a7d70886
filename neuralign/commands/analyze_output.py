"""What ``neuralign analyze`` writes and prints: one feature set into ``--out``, several
each into ``--out/LABEL/`` with the ranking and the partition at the top."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from ..align.data import jsonable
from ..base.truth import planted_latencies, planted_record


def _write_json(path: Path, obj: dict) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(jsonable(obj), indent=1))
    tmp.replace(path)


def _npz(path: Path, arrays: dict) -> None:
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez_compressed(tmp, **{k: np.asarray(v) for k, v in arrays.items()})
    tmp.replace(path)


def _one(out: Path, result, st, *, title: str, extra: dict, notes: list[str]) -> dict:
    """Maps, statistics, figures and report of one feature set in ``out``."""
    from ..report import write_outputs

    record = st.to_dict()
    paths = write_outputs(result, out, title=title, extra={**extra, "statistics": record})
    res = json.loads(paths["results"].read_text())
    res["statistics"] = record
    res["notes"] = list(notes) + list(st.notes)
    res["statistics_cache"] = extra.get("cache")
    _write_json(paths["results"], res)
    _npz(out / "significance.npz", st.arrays())
    paths["significance"] = out / "significance.npz"
    return paths


def write_all(args: argparse.Namespace, *, kind: str, path: str, data, specs: dict,
              results: dict, stats: dict, ranking, partition, notes: list[str],
              cache_info: dict) -> int:
    """Write every output and print the summary; return the exit status.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed command line.
    kind, path : str
        The dataset's kind and path.
    data : EpochData
        The epochs.
    specs : dict of str to Path
        Label -> feature file.
    results : dict of str to AlignmentResult
        The maps.
    stats : dict of str to LayerStatistics
        Their statistics.
    ranking : Ranking | None
        The ranking (several feature sets).
    partition : tuple | None
        ``(PartitionResult, record)`` with ``--partition``.
    notes : list of str
        Notes for the user (also written to ``results.json``).
    cache_info : dict
        What the stat cache read and wrote.
    """
    from ..sim.truth import recovery
    from .analyze_common import planted_from, solver_line, summary_lines

    planted = (data.info or {}).get("planted") or planted_from(kind, path)
    options = {k: (str(v) if isinstance(v, Path) else v)
               for k, v in vars(args).items() if k not in ("func", "command")}
    base = {"command": "neuralign analyze", "options": options, "dataset": args.dataset,
            "features": {k: str(v) for k, v in specs.items()}, "cache": cache_info}
    if planted:
        base["planted"] = planted_record(planted)
        base["simulated"] = True
    out = Path(args.out)
    several = len(results) > 1
    title0 = args.title or f"neuralign analyze: {args.dataset}"
    written = {}
    for label, result in results.items():
        extra = dict(base, feature_set=label)
        pl = planted_latencies(planted, result.layers) if planted else None
        if pl is not None and np.isfinite(pl).sum() >= 3:
            extra["recovery"] = recovery(result, pl)
        written[label] = _one(out / label if several else out, result, stats[label],
                              title=f"{title0} [{label}]" if several else title0,
                              extra=extra, notes=notes)
    lines: list[str] = []
    top = {"results": written[next(iter(written))]["results"],
           "report": written[next(iter(written))]["report"]}
    if several:
        top = _write_comparison(out, title0, base, results, stats, ranking, partition, notes,
                                written, args.alpha)
        lines += _comparison_lines(ranking, partition, args.alpha)
    if not args.quiet:
        for label, result in results.items():
            if several:
                print(f"== {label} ({specs[label]})")
            for line in summary_lines(result, planted, stats[label]):
                print(line)
            for line in stats[label].statements():
                print(line)
        for line in lines:
            print(line)
        for n in notes:
            print(f"note: {n}")
        print(solver_line(next(iter(results.values()))), file=sys.stderr)
        print(f"results: {top['results']}  report: {top['report']}")
    return 0


def _write_comparison(out: Path, title: str, base: dict, results: dict, stats: dict, ranking,
                      partition, notes: list[str], written: dict, alpha: float) -> dict:
    from ..offline.comparison import partition_arrays, partition_statements
    from ..report.stat_figures import partition_figure, ranking_figure, write_comparison_report

    record = dict(base)
    record["feature_sets"] = {
        label: {"results": str(Path(label) / "results.json"),
                "report": str(Path(label) / "report.html"),
                "layers": list(results[label].layers),
                "statistics": stats[label].to_dict()} for label in results}
    record["notes"] = list(notes)
    o = next(iter(stats.values())).options
    # the layout a live session writes (neuralign.align.monitor.Statistics.to_dict)
    record["statistics"] = {
        "seed": o.seed, "settings": {"n_boot": o.n_boot, "n_perm": o.n_perm, "alpha": o.alpha,
                                     "seed": o.seed},
        "models": {label: st.monitor_dict() for label, st in stats.items()},
        "ranking": None if ranking is None else ranking.to_dict()}
    figures = {}
    statements = []
    for label in results:
        statements += stats[label].statements()
    if ranking is not None:
        record["ranking"] = ranking.to_dict()
        figures["ranking"] = (ranking_figure(ranking), "feature sets ranked by their best "
                              "layer's peak r (95% intervals; paired bootstrap p)")
        statements += _comparison_lines(ranking, None, alpha)
    if partition is not None:
        res, meta = partition
        record["partition"] = meta
        _npz(out / "partition.npz", partition_arrays(res))
        figures["partition"] = (partition_figure(res, alpha=alpha), "variance partition: "
                                "unique and shared held-out R^2 with 95% intervals")
        statements += partition_statements(res, alpha=alpha)
    out.mkdir(parents=True, exist_ok=True)
    _write_json(out / "results.json", record)
    paths = write_comparison_report(out, title=title + " (comparison)", figures=figures,
                                    notes=statements, record=record)
    return {"results": out / "results.json", "report": paths["report"]}


def _comparison_lines(ranking, partition, alpha: float) -> list[str]:
    from ..offline.comparison import partition_statements

    lines = []
    if ranking is not None and ranking.rows:
        order = " > ".join(f"{r.label} ({r.best_layer}, peak r {r.peak_r:.3f} [{r.peak_r_ci[0]:.3f}"
                           f", {r.peak_r_ci[1]:.3f}])" for r in ranking.rows)
        lines.append(f"ranking: {order}")
        for (a, b), v in ranking.pairs.items():
            verdict = "better than" if v["p"] <= alpha else "not distinguishable from"
            lines.append(f"ranking: {a} vs {b}: diff {v['diff']:+.3f} (95% CI {v['ci'][0]:+.3f} "
                         f"to {v['ci'][1]:+.3f}), paired p = {v['p']:.3g} -> {a} {verdict} {b}"
                         f" over the same {v['n_stimuli']} held-out stimuli")
    if partition is not None:
        lines += partition_statements(partition[0], alpha=alpha)
    return lines
