"""What a search found, as data and as the files ``search --out DIR`` writes.

A candidate record (one per scored candidate, ``candidates.jsonl``) holds the candidate's index
in evaluation order, its architecture and hash, the main proxy's score (higher is better; None
= no score), every proxy's score, its status (``ok``, ``flagged``, ``no_score``,
``over_budget``), flag, seconds of model work, device, and its sizes (parameters, and FLOPs and
non-embedding parameters where the space counts them).  Every host builds it the same way, from
the runner's record through :func:`record_metrics` (NNI reports that dict, Optuna keeps it).
"""
from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

from .proxies.base import NO_SCORE, ProxyResult

#: metric keys that are not proxy scores
_NOT_SCORES = ("default", "flag", "arch", "seconds", "device", "over_budget")
#: what a front can trade the score against: the sizes counted from the architecture, and costs
SIZE_MEASURES = ("params", "nonembedding_params", "flops", "n_layers")
COST_MEASURES = ("latency_ms", "peak_memory_mb", "flops_per_token")
MEASURE_NAMES = {"params": "parameters", "nonembedding_params": "non-embedding parameters", "flops": "FLOPs per token",
                 "n_layers": "layers", "latency_ms": "latency (ms)", "peak_memory_mb": "peak memory (MiB)",
                 "flops_per_token": "FLOPs per token"}


def metric_dict(results: Mapping[str, ProxyResult], main: str, arch_hash: Optional[str] = None,
                device: Optional[str] = None) -> Dict[str, Any]:
    """The metric dict a host gets for one candidate, from core results: what NNI trials report
    and Optuna trials keep as a user attribute (:mod:`nni_zerocost.nas.evaluator` describes it)."""
    out: Dict[str, Any] = {"default": float(results[main].finite_score)}
    flags = []
    for spec, res in results.items():
        out[spec] = float(res.score) if res.ok else None
        if res.flag:
            flags.append(f"{spec}: {res.flag}")
    out["flag"] = "; ".join(flags)
    out["seconds"] = float(sum(res.seconds for res in results.values()))  # model work for this candidate
    if arch_hash is not None:
        out["arch"] = arch_hash
    if device is not None:
        out["device"] = device
    return out


def record_metrics(rec, main: str) -> Dict[str, Any]:
    """The metric dict of a runner record (:func:`metric_dict`); ``main``: the
    optimised proxy spec.  A candidate over the size budget reports NO_SCORE, ``over_budget``
    and the reason in ``flag``."""
    if rec.status == "over_budget":
        out = {"default": NO_SCORE, **{spec: None for spec in rec.results}, "flag": rec.error, "seconds": 0.0,
               "arch": rec.arch_hash, "over_budget": True}
    else:
        out = metric_dict(rec.results, main, rec.arch_hash, rec.device)
        out["seconds"] = rec.seconds  # work done now: nothing when the store answered
    if rec.sizes is not None:
        out.update({f"size_{k}": v for k, v in rec.sizes.items()})
    if rec.costs:
        out.update({f"cost_{k}": c["value"] for k, c in rec.costs.items()})
    return out


def candidate_record(checked, index: int, arch, metrics: Mapping[str, Any]) -> Dict[str, Any]:
    """The record of one scored candidate from the metric dict the evaluator reported."""
    plan = checked.plan
    sp = plan.search_space
    score = metrics.get("default")
    scored = score is not None and score > NO_SCORE  # NO_SCORE: the proxy has no value
    over = bool(metrics.get("over_budget"))
    sizes = {k[len("size_"):]: v for k, v in metrics.items() if k.startswith("size_")}
    sizes.update({k: v for k, v in _sizes(sp, arch, plan.context_options).items() if sizes.get(k) is None})
    costs = {k[len("cost_"):]: v for k, v in metrics.items() if k.startswith("cost_")}
    return {
        "index": index, "arch_hash": metrics.get("arch") or sp.arch_hash(arch), "arch": sp.to_dict(arch),
        "score": score if scored else None,
        "scores": {k: v for k, v in metrics.items()
                   if k not in _NOT_SCORES and not k.startswith("size_") and not k.startswith("cost_")},
        "status": "over_budget" if over else ("flagged" if metrics.get("flag") else "ok") if scored else "no_score",
        "flag": metrics.get("flag") or None, "seconds": metrics.get("seconds"), "device": metrics.get("device"),
        **{k: sizes.get(k) for k in SIZE_MEASURES}, "costs": costs,
    }


def _sizes(sp, arch, options) -> Dict[str, Optional[float]]:
    return {"params": sp.param_count(arch, **options), "flops": sp.flops(arch, **options),
            "nonembedding_params": sp.nonembedding_param_count(arch, **options),
            "n_layers": sp.layer_count(arch, **options)}


@dataclasses.dataclass
class SearchResult:
    """A finished search: every candidate record in evaluation order, and what it found."""

    checked: Any
    strategy: str
    budget: int
    top_k: int
    pareto: bool
    candidates: List[Dict[str, Any]]
    seconds: float
    #: the framework that ran the search loop, and how (the report names both)
    host: str = "NNI"
    host_detail: str = "sequential engine"
    pareto_against: Optional[str] = None
    front_figure: Optional[Path] = None  # written by write()

    @property
    def space(self) -> str:
        return self.checked.plan.space

    @property
    def proxy(self) -> str:
        return self.checked.plan.specs[0]

    @property
    def ranked(self) -> List[Dict[str, Any]]:
        """Best first, one entry per canonical architecture, unscored candidates last, those
        over the size budget left out."""
        seen, out = set(), []
        for rec in sorted(self.candidates, key=lambda r: -(r["score"] if r["score"] is not None else -math.inf)):
            if rec["arch_hash"] not in seen and rec["status"] != "over_budget":
                seen.add(rec["arch_hash"])
                out.append(rec)
        return out

    @property
    def top(self) -> List[Dict[str, Any]]:
        return self.ranked[: self.top_k]

    @property
    def size_key(self) -> str:
        """What the front trades the score against: ``pareto_against``, else non-embedding
        parameters under such a budget, else every parameter."""
        if self.pareto_against:
            return self.pareto_against
        return "nonembedding_params" if self.checked.budget.max_nonembedding_params is not None else "params"

    def measure(self, rec: Dict[str, Any]) -> Optional[float]:
        """A candidate's value of :attr:`size_key` (a size, or a cost it was measured for)."""
        value = rec.get(self.size_key)
        return value if value is not None else (rec.get("costs") or {}).get(self.size_key)

    @property
    def front(self) -> List[Dict[str, Any]]:
        """The scored candidates no other beats on both score and :attr:`size_key` (smallest first)."""
        from .budget import pareto_front

        if not self.pareto:
            return []
        pts = [r for r in self.ranked if r["score"] is not None and self.measure(r) is not None]
        return [pts[i] for i in pareto_front([(r["score"], float(self.measure(r))) for r in pts])]

    @property
    def size_note(self) -> Optional[str]:
        """One line when this run's result is driven by size, measured on its candidates: size
        is the non-embedding parameters where the space counts them (what grows with depth and
        width), else every parameter."""
        from .budget import size_bias_note

        scored = [r for r in self.ranked if r["score"] is not None]
        key = "nonembedding_params" if scored and all(r.get("nonembedding_params") is not None for r in scored) \
            else "params"
        return size_bias_note(self.proxy, [r.get(key) for r in scored], [r["score"] for r in scored], top=self.top_k,
                              what="non-embedding parameters" if key == "nonembedding_params" else "parameters")

    @property
    def work_seconds(self) -> float:
        return sum(r["seconds"] or 0.0 for r in self.candidates)

    def summary(self, space_summary=None) -> str:
        sp = self.checked.plan.search_space
        rest = max(self.seconds - self.work_seconds, 0.0)
        lines = [f"{len(self.candidates):,} candidates in {self.seconds:.1f} s ({len(self.ranked)} distinct; scoring "
                 f"{self.work_seconds:.1f} s, start-up and {self.host} {rest:.1f} s); top {len(self.top)} by "
                 f"{self.proxy}:"]
        for i, rec in enumerate(self.top, start=1):
            score = "no score" if rec["score"] is None else f"score {rec['score']:.6g}"
            lines.append(f"  {i}. {score}  hash {rec['arch_hash'][:12]}  {sp.summary(rec['arch'])}")
        n_over = sum(r["status"] == "over_budget" for r in self.candidates)
        if n_over:
            kinds = " and ".join(k for k, hit in (
                ("size", any(r["status"] == "over_budget" and not r.get("costs") for r in self.candidates)),
                ("measured", any(r["status"] == "over_budget" and r.get("costs") for r in self.candidates))) if hit)
            lines.append(f"  ({n_over:,} candidate{'s' if n_over != 1 else ''} over the {kinds} budget, proxies not "
                         "scored)")
        if self.pareto:
            what = MEASURE_NAMES.get(self.size_key, self.size_key)
            lines.append(f"Pareto front of {self.proxy} against {what} ({len(self.front)} candidates, smallest first):")
            for rec in self.front:
                lines.append(f"  {self.measure(rec):>12,.6g} {what}  score {rec['score']:.6g}  "
                             f"hash {rec['arch_hash'][:12]}")
        note = self.size_note
        if note:
            lines.append(note)
        return "\n".join(lines)

    # -- files ---------------------------------------------------------------------------------
    def write(self, folder, nni_dir: Optional[Path] = None) -> Dict[str, Path]:
        """``candidates.jsonl``, ``top/NN_<hash>.json``, ``search.png`` (with matplotlib) and
        ``report.md`` in ``folder``; returns the paths written."""
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        written: Dict[str, Path] = {}
        cand = out / "candidates.jsonl"
        cand.write_text("".join(json.dumps(r) + "\n" for r in self.candidates), encoding="utf-8")
        written["candidates"] = cand
        top_dir = out / "top"
        top_dir.mkdir(exist_ok=True)
        for old in top_dir.glob("*.json"):
            old.unlink()
        for i, rec in enumerate(self.top, start=1):
            (top_dir / f"{i:02d}_{rec['arch_hash'][:12]}.json").write_text(json.dumps(
                {"space": self.space, "arch": rec["arch"], "score": rec["score"], "proxy": self.proxy}, indent=1))
        written["top"] = top_dir
        figure = self._figure(out / "search.png")
        if figure is not None:
            written["figure"] = figure
        if self.pareto:
            written["front"] = self._write_front(out / "front.csv")
            self.front_figure = self._front_figure(out / "pareto.png")
            if self.front_figure is not None:
                written["front_figure"] = self.front_figure
        report = out / "report.md"
        report.write_text(self.report(figure, nni_dir))
        written["report"] = report
        return written

    def _write_front(self, path: Path) -> Path:
        """The front as a table: the measure, the score, the hash and the architecture."""
        import csv

        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow([self.size_key, "score", "arch_hash", "arch"])
            for r in self.front:
                w.writerow([self.measure(r), r["score"], r["arch_hash"], json.dumps(r["arch"], sort_keys=True)])
        return path

    def _front_figure(self, path: Path) -> Optional[Path]:
        try:
            from .plots import plot_front
        except ImportError:  # pragma: no cover - no matplotlib
            return None
        pts = [(float(self.measure(r)), r["score"]) for r in self.ranked
               if r["score"] is not None and self.measure(r) is not None]
        front = [(float(self.measure(r)), r["score"]) for r in self.front]
        try:
            return plot_front(pts, front, self.proxy, MEASURE_NAMES.get(self.size_key, self.size_key), path,
                              f"{self.space} space, {self.strategy}, {len(pts)} scored candidates")
        except ImportError:
            return None

    def _figure(self, path: Path) -> Optional[Path]:
        """Best-so-far and score-distribution figure; None (said in the report) without matplotlib."""
        try:
            from .plots import plot_search
        except ImportError:  # pragma: no cover
            return None
        index = {id(r): i for i, r in enumerate(self.candidates)}
        job = self.checked.job
        try:
            return plot_search([r["score"] for r in self.candidates], [index[id(r)] for r in self.top], self.proxy, path,
                               f"{self.space} space, {self.strategy}, budget {self.budget}, seed {job.request.seed}",
                               ranked=self.strategy == "ranking")  # ranking reports its candidates best first
        except ImportError:
            return None

    def report(self, figure: Optional[Path] = None, nni_dir: Optional[Path] = None) -> str:
        job, sp = self.checked.job, self.checked.plan.search_space
        scored = sorted(r["score"] for r in self.candidates if r["score"] is not None)
        work = self.work_seconds
        lines = [
            f"# Search report: {self.space} space, proxy `{self.proxy}`",
            "",
            f"- strategy: {self.strategy} ({self.host}, {self.host_detail}), budget {self.budget}, "
            f"seed {job.request.seed}",
            f"- data: {job.request.corpus or 'embedded default batch'}",
            f"- candidates scored: {len(self.candidates)} in {self.seconds:.1f} s wall (scoring {work:.1f} s; the rest "
            f"is start-up, {self.host} and the store); "
            f"flagged: {sum(r['status'] == 'flagged' for r in self.candidates)}; "
            f"no score: {sum(r['score'] is None and r['status'] != 'over_budget' for r in self.candidates)}",
            f"- score (higher = better): best {scored[-1]:.6g}, median {scored[len(scored) // 2]:.6g}" if scored
            else "- no candidate got a score",
        ]
        limits = self.checked.budget.limits()
        if limits:
            names = {"max_params": "max params", "max_nonembedding_params": "max non-embedding params",
                     "max_flops": "max FLOPs/token"}
            lines.append(f"- size budget: {', '.join(f'{names[k]} {v:.4g}' for k, v in limits.items())}; "
                         f"{sum(r['status'] == 'over_budget' for r in self.candidates)} candidates over it, not "
                         "scored (no model work)")
        note = self.size_note
        if note:
            lines.append(f"- {note[len('note: '):]}")
        lines.append("")
        if figure is not None:
            left = ("every candidate's score against its rank (the ranking strategy scores all candidates, then "
                    "ranks them)" if self.strategy == "ranking" else
                    "every candidate's score in evaluation order and the best so far")
            alt = "scores by rank" if self.strategy == "ranking" else "best score so far"
            lines += [f"![{alt} and score distribution]({figure.name})", "",
                      f"Left: {left}; right: the distribution of scores, the kept top architectures in red.", ""]
        else:
            lines += ["(No figure: install the plot extra, `pip install 'nni-zerocost[plot]'`.)", ""]
        lines += ["| rank | score | hash | architecture |", "|---:|---:|---|---|"]
        for i, r in enumerate(self.top, start=1):
            score = "no score" if r["score"] is None else f"{r['score']:.6g}"
            lines.append(f"| {i} | {score} | `{r['arch_hash'][:12]}` | {sp.summary(r['arch'])} |")
        if self.front:
            what = MEASURE_NAMES.get(self.size_key, self.size_key)
            lines += ["", f"Pareto front of the score against {what} (no candidate has both a higher score and a "
                          f"lower {what}), smallest first:", ""]
            if self.front_figure is not None:
                lines += [f"![Pareto front]({self.front_figure.name})", ""]
            lines += [f"| {what} | score | hash | architecture |", "|---:|---:|---|---|"]
            for r in self.front:
                lines.append(f"| {self.measure(r):,.6g} | {r['score']:.6g} | `{r['arch_hash'][:12]}` | "
                             f"{sp.summary(r['arch'])} |")
        lines += ["", "Each file in `top/` holds `{space, arch, score, proxy}`; load the architecture with",
                  "`nni_zerocost.get_space(space).parse(arch)`. `candidates.jsonl` has every candidate."]
        if nni_dir is not None:
            lines += ["", f"NNI's own experiment folder is `{nni_dir.name}/<experiment id>/` (its checkpoint and log): "
                          "NNI writes it for every experiment, and `nnictl` can read it. A re-run into this folder "
                          "replaces it, so there is one per output folder."]
        return "\n".join(lines) + "\n"
