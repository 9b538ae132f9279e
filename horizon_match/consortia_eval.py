"""Evaluating partner suggestions on CORDIS ground truth (task b of a CORDIS folder).

For each query of `task_b_consortium.jsonl` the topic (title, destination, call title from
`topics.csv`) and the real coordinator are given; every organisation with coordinator or
participant rows in other projects is a candidate. The ranking is the product's own
`rank_partners`; the two baselines rank by activity and by shared projects with the
coordinator. Recall@10/20/50 and nDCG@20 are reported against the real partners and against
those with a history in the folder.

Honesty: the target project is left out of everything (profiles, collaboration graph,
activity counts, country statistics) — with `scope="topic"` (the default) every project of
the target's topic is, because at proposal time none of a topic's projects exist yet. Nothing
of the target project is read: its topic title and type of action come from `topics.csv` (or,
when the topic is not listed there, from another project of the same topic), and outcome
counts of the topic (`n_projects`) are never used. The folder may not contain the target
projects at all.
"""

from __future__ import annotations

import csv
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from horizon_match.config import Settings
from horizon_match.db import Database
from horizon_match.errors import InputError, Problem, ValidationError
from horizon_match.partner_pool import PartnerPool, VectorCache, attach_pool_vectors, pool_from_cordis
from horizon_match.partner_ranking import (
    VARIANTS,
    CallQuery,
    PoolIndex,
    baseline_lead_partners,
    baseline_most_active,
    call_context,
    call_head_text,
    rank_partners,
)
from horizon_match.progress import NULL_PROGRESS, Progress
from horizon_match.tree_model import CrossFitted

TASK_FILE = "task_b_consortium.jsonl"
RANKED_PER_QUERY = 50
CUTOFFS = (10, 20, 50)
TARGETS = ("true_partner_ids", "partners_with_history")
SCOPES = ("topic", "project")
BASELINES = ("most_active", "lead_partners")


@dataclass(frozen=True)
class PartnerQuery:
    query_id: str
    topic: str
    coordinator_id: str
    target_project_id: str | None
    funding_scheme: str | None
    truth: dict[str, tuple[str, ...]]  # target name -> PICs


@dataclass
class TopicInfo:
    title: str
    destination: str = ""
    call_title: str = ""
    type_of_action: str = ""


def read_queries(path: Path) -> list[PartnerQuery]:
    """The task file, checked whole: every bad line is reported as `file:line: field: ...`."""
    if not path.is_file():
        raise InputError(f"{path}: file missing; a CORDIS evaluation folder for task b needs "
                         f"{TASK_FILE}")
    problems: list[Problem] = []
    queries: list[PartnerQuery] = []
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                problems.append(Problem(str(path), n, None, f"not JSON ({exc.msg})"))
                continue
            if not isinstance(row, dict):
                problems.append(Problem(str(path), n, None, "expected a JSON object"))
                continue
            bad = [k for k in ("query_id", "topic", "coordinator_id") if not row.get(k)]
            for k in bad:
                problems.append(Problem(str(path), n, k, "missing or empty"))
            lists = {}
            for k in TARGETS:
                value = row.get(k, [])
                if not isinstance(value, list):
                    problems.append(Problem(str(path), n, k, "expected a list of PICs"))
                    value = []
                lists[k] = tuple(str(v) for v in value)
            if bad:
                continue
            queries.append(PartnerQuery(
                query_id=str(row["query_id"]),
                topic=str(row["topic"]),
                coordinator_id=str(row["coordinator_id"]),
                target_project_id=str(row["target_project_id"]) if row.get("target_project_id") else None,
                funding_scheme=row.get("fundingScheme"),
                truth=lists,
            ))
    if problems:
        raise ValidationError(problems)
    if not queries:
        raise InputError(f"{path}: no queries in the file")
    return queries


def read_topics(folder: Path) -> dict[str, TopicInfo]:
    """Topic metadata from topics.csv (title, destination, callTitle, actionType); topics
    missing there get the topic title some project of the topic carries."""
    topics: dict[str, TopicInfo] = {}
    path = folder / "topics.csv"
    if path.is_file():
        with path.open(encoding="utf-8", newline="") as fh:
            for row in csv.DictReader(fh):
                topic = (row.get("topic") or "").strip()
                if topic:
                    topics[topic] = TopicInfo(
                        title=(row.get("title") or "").strip(),
                        destination=(row.get("destination") or "").strip(),
                        call_title=(row.get("callTitle") or "").strip(),
                        type_of_action=(row.get("actionType") or row.get("fundingScheme") or "").strip(),
                    )
    return topics


@dataclass
class MethodScores:
    sums: dict[str, dict[str, float]] = field(
        default_factory=lambda: {t: {} for t in TARGETS}
    )
    counts: dict[str, int] = field(default_factory=lambda: {t: 0 for t in TARGETS})

    def add(self, ranked: Sequence[str], query: PartnerQuery) -> None:
        for target in TARGETS:
            truth = set(query.truth[target])
            if not truth:
                continue
            self.counts[target] += 1
            sums = self.sums[target]
            for k in CUTOFFS:
                hit = len(truth.intersection(ranked[:k]))
                sums[f"recall@{k}"] = sums.get(f"recall@{k}", 0.0) + hit / len(truth)
            sums["ndcg@20"] = sums.get("ndcg@20", 0.0) + ndcg(ranked, truth, 20)

    def means(self) -> dict[str, dict[str, float]]:
        return {
            t: {m: round(v / self.counts[t], 4) for m, v in self.sums[t].items()}
            if self.counts[t] else {}
            for t in TARGETS
        }


def ndcg(ranked: Sequence[str], truth: set[str], k: int) -> float:
    dcg = sum(1.0 / math.log2(i + 2) for i, x in enumerate(ranked[:k]) if x in truth)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(k, len(truth))))
    return dcg / ideal if ideal else 0.0


@dataclass
class PartnerEvalReport:
    folder: Path
    scope: str
    queries: int
    pool_organisations: int
    pool_projects: int
    coordinators_without_history: int
    methods: dict[str, dict[str, dict[str, float]]]  # method -> target -> metric -> value
    counted: dict[str, int]  # target -> queries with a non-empty truth
    seconds: float
    model: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "task": "b",
            "folder": str(self.folder),
            "scope": self.scope,
            "queries": self.queries,
            "queries_counted": self.counted,
            "pool_organisations": self.pool_organisations,
            "pool_projects": self.pool_projects,
            "coordinators_without_history": self.coordinators_without_history,
            "embedding_model": self.model,
            "methods": self.methods,
            "seconds": self.seconds,
        }

    def as_text(self) -> str:
        lines = [
            f"task b (consortium partners): {self.queries} queries, pool of "
            f"{self.pool_organisations} organisations / {self.pool_projects} projects, "
            f"left out: the target's {self.scope}"
            + ("" if self.scope == "project" else " (all its projects)"),
        ]
        if self.coordinators_without_history:
            lines.append(f"{self.coordinators_without_history} coordinator(s) have no other "
                         "project in the folder (ranked without collaboration history)")
        for target in TARGETS:
            lines.append("")
            lines.append(f"against {target} ({self.counted[target]} queries):")
            lines.append(f"  {'method':<26}" + "".join(
                f"{m:>11}" for m in ("recall@10", "recall@20", "recall@50", "ndcg@20")))
            for method, by_target in self.methods.items():
                row = by_target.get(target, {})
                lines.append(f"  {method:<26}" + "".join(
                    f"{row.get(m, float('nan')):>11.4f}"
                    for m in ("recall@10", "recall@20", "recall@50", "ndcg@20")))
        lines.append("")
        lines.append(f"{self.seconds:.1f} s")
        return "\n".join(lines)


METHOD_LABELS = {
    "combined": "suggester (combined)",
    "text": "ablation: text fit only",
    "collaboration": "ablation: collaboration",
    "most_active": "baseline: most active",
    "lead_partners": "baseline: coordinator's",
}


def evaluate_partner_ranking(
    folder: Path,
    cache: VectorCache,
    *,
    scope: str = "topic",
    variants: Sequence[str] = tuple(VARIANTS),
    rankings: TextIO | None = None,
    limit: int | None = None,
    progress: Progress = NULL_PROGRESS,
    models: dict[str, CrossFitted] | None = None,
) -> PartnerEvalReport:
    """Run task b on `folder`; `rankings` (if given) receives one JSON line per query with the
    suggester's ranked PICs (at least 50). `models` (from tree_model.load_models) replaces
    the shipped partner ranking model."""
    if scope not in SCOPES:
        raise InputError(f"unknown scope {scope!r}; use one of {', '.join(SCOPES)}")
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise InputError(f"unknown variant(s) {', '.join(unknown)}; use {', '.join(VARIANTS)}")
    t0 = time.perf_counter()
    queries = read_queries(folder / TASK_FILE)
    if limit is not None:
        queries = queries[:limit]
    pool = pool_from_cordis(folder, progress)
    attach_pool_vectors(pool, cache, progress)
    index = PoolIndex.build(pool)
    calls = build_calls(folder, pool, queries, cache, progress)
    by_topic: dict[str, list[int]] = {}
    for j, p in enumerate(pool.projects):
        if p.topic:
            by_topic.setdefault(p.topic, []).append(j)

    scores = {m: MethodScores() for m in [*variants, *BASELINES]}
    no_history = 0
    keys = [o.key for o in pool.orgs]
    progress.start(f"ranking partners for {len(queries)} queries", len(queries))
    for query in queries:
        exclude = left_out(pool, by_topic, query, scope)
        lead = pool.find(query.coordinator_id)
        if lead is None or np.setdiff1d(pool.org_projects(lead), exclude).size == 0:
            no_history += 1
        call = calls[query.topic]
        ctx = call_context(index, call, exclude)  # shared by the variants
        for variant in variants:
            ranked = rank_partners(call, lead, index, exclude=exclude, variant=variant, context=ctx,
                                   models=models)
            pics = [keys[i] for i in ranked.order[: max(RANKED_PER_QUERY, 50)]]
            scores[variant].add(pics, query)
            if variant == "combined" and rankings is not None:
                rankings.write(json.dumps({"query_id": query.query_id, "ranked": pics}) + "\n")
        for name, fn in (("most_active", baseline_most_active), ("lead_partners", baseline_lead_partners)):
            order = fn(index, lead, exclude)
            scores[name].add([keys[i] for i in order[:RANKED_PER_QUERY]], query)
        progress.advance()
    progress.finish()
    methods = {METHOD_LABELS.get(m, m): s.means() for m, s in scores.items()}
    counted = next(iter(scores.values())).counts
    return PartnerEvalReport(
        folder=folder, scope=scope, queries=len(queries), pool_organisations=len(pool),
        pool_projects=len(pool.projects), coordinators_without_history=no_history,
        methods=methods, counted=dict(counted), seconds=round(time.perf_counter() - t0, 1),
        model=pool.vector_model or "",
    )


def evaluate_partners(
    db: Database,
    settings: Settings,
    folder: Path,
    *,
    rankings: Path | None = None,
    limit: int | None = None,
    scope: str = "topic",
    variants: Sequence[str] = tuple(VARIANTS),
    embedder: Any = None,
    progress: Progress = NULL_PROGRESS,
    models: dict[str, CrossFitted] | None = None,
) -> PartnerEvalReport:
    """Task b as `horizon-match evaluate cordis DIR --task b` runs it: project vectors through
    the embedding cache of `db` (computed once), the settings' model (or `embedder`), the
    suggester's rankings written to `rankings` as JSON lines."""
    from horizon_match.embedding import EmbedderSet, EmbeddingCache, load_embedder

    if embedder is None:
        embedder = load_embedder(settings)
    if isinstance(embedder, EmbedderSet):
        embedder = embedder.default
    cache = EmbeddingCache(db, embedder)
    if rankings is None:
        return evaluate_partner_ranking(folder, cache, scope=scope, variants=variants,
                                        limit=limit, progress=progress, models=models)
    try:
        out = rankings.open("w", encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{rankings}: cannot write the rankings file ({exc.strerror})") from exc
    with out:
        return evaluate_partner_ranking(folder, cache, scope=scope, variants=variants,
                                        rankings=out, limit=limit, progress=progress,
                                        models=models)


def left_out(pool: PartnerPool, by_topic: dict[str, list[int]], query: PartnerQuery,
             scope: str) -> np.ndarray:
    """Project rows that must not count for this query."""
    rows: set[int] = set()
    if query.target_project_id and query.target_project_id in pool.project_index:
        rows.add(pool.project_index[query.target_project_id])
    if scope == "topic":
        rows.update(by_topic.get(query.topic, ()))
    return np.array(sorted(rows), dtype=np.int64)


def build_calls(folder: Path, pool: PartnerPool, queries: Sequence[PartnerQuery],
                cache: VectorCache, progress: Progress = NULL_PROGRESS) -> dict[str, CallQuery]:
    """One CallQuery per topic of the queries, from topic metadata only."""
    topics = read_topics(folder)
    titles_of_projects = _topic_titles(folder)
    wanted = sorted({q.topic for q in queries})
    texts: list[str] = []
    infos: list[TopicInfo] = []
    for topic in wanted:
        info = topics.get(topic)
        if info is None:
            info = TopicInfo(title=titles_of_projects.get(topic) or topic)
        infos.append(info)
        texts.append(call_head_text(info.title, info.destination, info.call_title) or topic)
    vectors = cache.encode(texts, progress)
    schemes = {q.topic: q.funding_scheme for q in queries}
    return {
        topic: CallQuery(
            vector=vectors[i], identifier=topic,
            type_of_action=info.type_of_action or schemes.get(topic), text=texts[i],
        )
        for i, (topic, info) in enumerate(zip(wanted, infos, strict=True))
    }


def _topic_titles(folder: Path) -> dict[str, str]:
    """topic -> topic title as projects.csv lists it (the topic's, not any project's, text)."""
    from horizon_match.cordis import find_cordis_files, iter_csv_records

    path = find_cordis_files(folder)["projects"]
    out: dict[str, str] = {}
    records = iter_csv_records(path)
    _, header = next(records)
    lower = [h.strip().lower() for h in header]
    if "topic" not in lower or "topictitle" not in lower:
        return out
    it, tt = lower.index("topic"), lower.index("topictitle")
    for _, rec in records:
        if len(rec) == len(header) and rec[it] and rec[tt]:
            out.setdefault(rec[it].strip(), rec[tt].strip())
    return out
