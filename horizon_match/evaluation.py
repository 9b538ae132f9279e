"""Matching quality on real outcomes: CORDIS task A (which topic did an organisation win?).

Protocol (folder in the `../shared/data/cordis_dev` format, see its README): each query's
organisation becomes a member whose profile is exactly its `profile_project_ids` (title,
objective, keywords, EuroSciVoc labels, topic and funding scheme of each project); the
candidate calls are the `top_down` topics of the query's call year with their title,
destination, call title, call identifier and type of action; ranking goes through
`horizon_match.scoring.Matcher`, the code `horizon-match match` uses. Reported: MRR and
Recall@1/5/10 of the matcher and of a plain TF-IDF ranking of the concatenated profile, on all
queries and on those whose target topic is not among the profile projects' own topics.

What is never read: the target project (its row may not even be in the folder; only
`target_topic` is used, to score), a topic's `n_projects` or `fundingScheme` (outcomes of its
call year). The learned ranker is trained on outcomes; `folds=K` re-trains it K times, each time
without the topics (and their projects) of one fold, and ranks that fold's queries with it, so
every reported query was ranked by a model that never saw its topic.
"""

from __future__ import annotations

import csv
import json
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from horizon_match.config import Settings
from horizon_match.db import Database
from horizon_match.embedding import EmbedderSet, EmbeddingCache, EncodeStats, load_embedder_set
from horizon_match.errors import InputError
from horizon_match.features import parse_identifier
from horizon_match.progress import NULL_PROGRESS, Progress
from horizon_match.ranker import DestinationProfiles, RankerModel, load_ranker
from horizon_match.scoring import (
    CALL_FEATURES,
    DENSE_FEATURES,
    FEATURES,
    DESTINATION_FEATURES,
    LEXICAL_FEATURES,
    ORG_FEATURES,
    ORG_KIND_FEATURES,
    TRACK_NAMES,
    CallDoc,
    Matcher,
    PastProject,
    Profile,
)
from horizon_match.training import TrainingOptions, TrainingSet, collect, fit_ranker

ORGANISATION_TYPES = {"HES": "university", "PRC": "company", "REC": "research", "PUB": "public", "OTH": "other"}
RANKED_LENGTH = 100


def _with_z(names: Sequence[str]) -> tuple[str, ...]:
    return tuple(names) + tuple(f"z_{n}" for n in names)


_DENSE = _with_z(DENSE_FEATURES)
_LEXICAL = _with_z(LEXICAL_FEATURES)
_TRACK = TRACK_NAMES
_DESTINATIONS = _with_z(DESTINATION_FEATURES)
# The signals the shipped ranker reads, chosen on held-out folds (BENCHMARKS.md). The call's
# type of action and the member's kind of organisation lowered the held-out numbers, so they
# are left out.
SHIPPED_SIGNALS: tuple[str, ...] = _DENSE + _LEXICAL + _TRACK + _DESTINATIONS
# each variant is trained and evaluated exactly like the matcher, on a subset of the signals
ABLATIONS: dict[str, tuple[str, ...] | None] = {
    "dense only": _DENSE,
    "lexical only": _LEXICAL,
    "track record only": _TRACK,
    "dense+lexical": _DENSE + _LEXICAL,
    "+track record": _DENSE + _LEXICAL + _TRACK,
    # "+destination profiles" is SHIPPED_SIGNALS, the matcher itself
    # + the type of action and the kind of organisation. Not `dest_known` ("the call's
    # destination has a profile"): in held-out runs a destination lacks a profile when all its
    # topics were left out, and the target's always is, so that flag points at the answer.
    "all signals": tuple(f for f in FEATURES if f != "dest_known"),
}
# Training examples get destination profiles built without their own target topic's projects
# (leave-fold-out over the training topics): with them, training features carry the answer
# and the ranker learns to trust destination profiles more than they deserve on new topics.
INNER_FOLDS = 4
assert set(_DENSE + _LEXICAL + _TRACK + _DESTINATIONS + CALL_FEATURES + ORG_FEATURES
           + ORG_KIND_FEATURES) == set(FEATURES)
_TITLE_ACTION = re.compile(r"\((RIA|IA|CSA|PCP|PPI|COFUND)\)\s*$", re.IGNORECASE)


# --- the folder -------------------------------------------------------------------------------


@dataclass
class CordisTopic:
    topic: str
    title: str
    destination: str
    call_title: str
    master_call: str
    call_year: int | None
    topic_type: str
    action_type: str
    process: str

    def call_doc(self) -> CallDoc:
        action = self.action_type
        if not action:
            # the type of action is part of every published topic; here it is missing from the
            # portal export for some topics, so take it from the title's "(RIA)" suffix
            found = _TITLE_ACTION.search(self.title)
            action = f"HORIZON-{found.group(1).upper()}" if found else ""
        return CallDoc(
            key=self.topic,
            title=self.title,
            destination=self.destination,
            call_title=self.call_title if self.call_title != self.master_call else "",
            type_of_action=action or None,
            call_identifier=self.master_call or None,
            two_stage=self.process == "two-stage" or "two-stage" in self.topic.lower(),
        )


@dataclass
class Query:
    query_id: str
    organisation: str
    activity_type: str
    country: str
    profile_ids: list[str]
    target_topic: str
    call_year: int


@dataclass
class CordisFolder:
    path: Path
    projects: dict[str, PastProject]
    topics: dict[str, CordisTopic]
    queries: list[Query]
    missing_profile_projects: int = 0

    def profile(self, query: Query, exclude_topics: set[str] | None = None) -> Profile:
        projects = [self.projects[p] for p in query.profile_ids if p in self.projects]
        if exclude_topics:
            projects = [p for p in projects if p.topic not in exclude_topics]
        return Profile(
            key=query.query_id,
            projects=projects,
            organisation_type=ORGANISATION_TYPES.get(query.activity_type),
            country=query.country or None,
        )

    def candidates(self, year: int) -> list[CordisTopic]:
        return sorted(
            (t for t in self.topics.values() if t.call_year == year and t.topic_type == "top_down"),
            key=lambda t: t.topic,
        )

    def overlaps(self, query: Query) -> bool:
        """The shortcut that does not exist in production: the target topic is the topic of
        one of the profile projects."""
        return query.target_topic in {
            self.projects[p].topic for p in query.profile_ids if p in self.projects
        }


def _read_csv(path: Path, required: Sequence[str]) -> list[dict[str, str]]:
    if not path.exists():
        raise InputError(f"{path} is missing; the folder must hold the files of the cordis_dev format")
    csv.field_size_limit(sys.maxsize)
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in required if c not in (reader.fieldnames or [])]
        if missing:
            raise InputError(f"{path}:1: columns {', '.join(missing)} are missing")
        return list(reader)


def read_cordis_folder(folder: Path, task: str = "a", limit: int | None = None) -> CordisFolder:
    """The files the evaluation needs, checked; `limit` keeps the first N queries."""
    if task != "a":
        raise InputError(f"task {task!r} is not evaluated here; use --task a (topic matching)")
    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder; give the cordis_dev folder")
    queries_path = folder / "task_a_topic_matching.jsonl"
    if not queries_path.exists():
        raise InputError(f"{queries_path} is missing; the folder must hold the task A queries")
    queries: list[Query] = []
    with queries_path.open(encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
                queries.append(
                    Query(
                        query_id=str(raw["query_id"]),
                        organisation=str(raw.get("organisationID", "")),
                        activity_type=str(raw.get("org_activityType") or ""),
                        country=str(raw.get("org_country") or ""),
                        profile_ids=[str(p) for p in raw["profile_project_ids"]],
                        target_topic=str(raw["target_topic"]),
                        call_year=int(raw["call_year"]),
                    )
                )
            except (ValueError, KeyError, TypeError) as exc:
                raise InputError(f"{queries_path}:{line_no}: not a task A query ({exc})") from exc
            if limit is not None and len(queries) >= limit:
                break
    wanted = {p for q in queries for p in q.profile_ids}
    fields: dict[str, list[str]] = {}
    voc = folder / "project_euroscivoc.csv"
    if voc.exists():
        for row in _read_csv(voc, ["projectID", "title"]):
            if row["projectID"] in wanted:
                fields.setdefault(row["projectID"], []).append(row["title"])
    projects: dict[str, PastProject] = {}
    for row in _read_csv(folder / "projects.csv", ["id", "title", "objective", "topic", "fundingScheme"]):
        # only profile projects are read: a target project is never looked at
        if row["id"] in wanted:
            projects[row["id"]] = PastProject(
                title=row["title"] or "",
                summary=row["objective"] or "",
                topic=row["topic"] or None,
                funding_scheme=row["fundingScheme"] or None,
                keywords=row.get("keywords") or "",
                fields=tuple(sorted(set(fields.get(row["id"], [])))),
            )
    topics: dict[str, CordisTopic] = {}
    for row in _read_csv(folder / "topics.csv", ["topic", "title", "call_year", "topic_type"]):
        topics[row["topic"]] = CordisTopic(
            topic=row["topic"],
            title=row["title"] or "",
            destination=row.get("destination") or "",
            call_title=row.get("callTitle") or "",
            master_call=row.get("masterCall") or "",
            call_year=int(row["call_year"]) if row["call_year"] else None,
            topic_type=row["topic_type"] or "",
            action_type=row.get("actionType") or "",
            process=row.get("process") or "",
        )
    missing = sum(1 for p in wanted if p not in projects)
    return CordisFolder(folder, projects, topics, queries, missing)


# --- metrics ----------------------------------------------------------------------------------


def metrics(ranks: Sequence[int]) -> dict[str, float]:
    r = np.asarray(ranks, dtype=np.float64)
    if len(r) == 0:
        return {"n": 0, "mrr": 0.0, "recall@1": 0.0, "recall@5": 0.0, "recall@10": 0.0}
    return {
        "n": int(len(r)),
        "mrr": round(float((1.0 / r).mean()), 4),
        "recall@1": round(float((r <= 1).mean()), 4),
        "recall@5": round(float((r <= 5).mean()), 4),
        "recall@10": round(float((r <= 10).mean()), 4),
    }


def rank_of(scores: np.ndarray, target: int) -> int:
    """1-based rank of `target` when sorting by score, ties going to the earlier index (the
    order `Matcher.rank` uses)."""
    t = scores[target]
    return int((scores > t).sum() + (scores[:target] == t).sum() + 1)


def tfidf_baseline(folder: CordisFolder, queries: Sequence[Query], calls: Sequence[CordisTopic]) -> list[int]:
    """Ranks of the targets under plain TF-IDF: profile = concatenation of its projects' title,
    objective and keywords; topic = title + destination + call title."""
    from scipy import sparse
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.preprocessing import normalize

    ids = sorted({p for q in queries for p in q.profile_ids if p in folder.projects})
    position = {p: i for i, p in enumerate(ids)}
    texts = [
        f"{folder.projects[p].title}. {folder.projects[p].summary} {folder.projects[p].keywords}" for p in ids
    ]
    call_texts = [". ".join(x for x in (c.title, c.destination, c.call_title) if x) for c in calls]
    vectorizer = CountVectorizer(stop_words="english", dtype=np.float32)
    counts = vectorizer.fit_transform(texts + call_texts).tocsr()
    df = np.bincount(counts.indices, minlength=counts.shape[1])
    idf = (np.log((1.0 + counts.shape[0]) / (1.0 + df)) + 1.0).astype(np.float32)

    def weigh(m: Any) -> Any:
        m = sparse.csr_matrix(m, dtype=np.float32, copy=True)
        m.data = 1.0 + np.log(m.data)
        return normalize(m @ sparse.diags(idf))

    rows = [i for i, q in enumerate(queries) for p in q.profile_ids if p in position]
    cols = [position[p] for q in queries for p in q.profile_ids if p in position]
    membership = sparse.csr_matrix(
        (np.ones(len(cols), dtype=np.float32), (rows, cols)), shape=(len(queries), len(ids))
    )
    profile = weigh(membership @ counts[: len(ids)])
    topic = weigh(counts[len(ids) :])
    call_index = {c.topic: j for j, c in enumerate(calls)}
    ranks = []
    for start in range(0, len(queries), 1024):
        block = np.asarray((profile[start : start + 1024] @ topic.T).todense())
        for r, q in enumerate(queries[start : start + 1024]):
            ranks.append(rank_of(block[r], call_index[q.target_topic]))
    return ranks


# --- the evaluation ---------------------------------------------------------------------------


@dataclass
class EvalReport:
    folder: str
    task: str
    queries: int
    no_overlap: int
    results: dict[str, dict[str, dict[str, float]]]  # method -> subset -> metrics
    ranker: str
    embedded: dict[str, int]
    seconds: dict[str, float]
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "folder": self.folder,
            "task": self.task,
            "queries": self.queries,
            "no_overlap": self.no_overlap,
            "results": self.results,
            "ranker": self.ranker,
            "embedded": self.embedded,
            "seconds": self.seconds,
            "notes": self.notes,
        }

    def table(self) -> str:
        lines = [
            f"CORDIS task {self.task.upper()}: {self.queries} queries ({self.no_overlap} without "
            f"the target topic among the profile's own topics); ranker: {self.ranker}",
            f"{'method':<28} {'subset':<11} {'MRR':>7} {'R@1':>7} {'R@5':>7} {'R@10':>7} {'n':>7}",
        ]
        for method, subsets in self.results.items():
            for subset, m in subsets.items():
                lines.append(
                    f"{method:<28} {subset:<11} {m['mrr']:>7.4f} {m['recall@1']:>7.4f} "
                    f"{m['recall@5']:>7.4f} {m['recall@10']:>7.4f} {m['n']:>7}"
                )
        lines.append(
            f"embedded {self.embedded['computed']} new passages, {self.embedded['cached']} from the "
            f"cache; {self.seconds['total']:.1f} s"
        )
        lines.extend(f"note: {n}" for n in self.notes)
        return "\n".join(lines)


def topic_folds(queries: Sequence[Query], k: int, seed: int = 0) -> dict[str, int]:
    """Target topic -> fold, deterministic."""
    topics = sorted({q.target_topic for q in queries})
    order = np.random.default_rng(seed).permutation(len(topics))
    return {topics[i]: n % k for n, i in enumerate(order)}


def destination_profiles(
    matcher: Matcher, projects: Sequence[PastProject], model: str
) -> DestinationProfiles:
    """Mean vector per destination / programme part of the projects funded there."""
    known = [p for p in projects if p.topic]
    vectors = matcher.project_vectors(known)
    places = [parse_identifier(p.topic) for p in known]
    return DestinationProfiles.fit(
        model, vectors, [pl.destination for pl in places], [pl.part for pl in places]
    )


def evaluate_cordis(
    db: Database,
    settings: Settings,
    folder: Path,
    *,
    task: str = "a",
    limit: int | None = None,
    rankings: Path | None = None,
    model: RankerModel | None = None,
    folds: int | None = None,
    ablation: bool = False,
    options: TrainingOptions | None = None,
    embedder: Any = None,
    progress: Progress = NULL_PROGRESS,
) -> EvalReport:
    """Rank every query's candidate topics with the matcher; report MRR / Recall@k.

    `model` defaults to the shipped ranker; `folds` re-trains it per fold of target topics
    (held-out numbers), and `ablation` (with folds) also trains it on subsets of the signals.
    Vectors are cached in `db` like any run's.
    """
    started = time.perf_counter()
    data = read_cordis_folder(folder, task, limit)
    if not data.queries:
        raise InputError(f"{folder}: no queries to evaluate")
    unknown = sorted({q.target_topic for q in data.queries} - set(data.topics))
    if unknown:
        raise InputError(f"{folder}/topics.csv: target topic {unknown[0]} is not listed")
    embedders = EmbedderSet.of(embedder) if embedder is not None else load_embedder_set(settings)
    # the evaluated organisations are English-language CORDIS records: one model for all
    embedders = EmbedderSet(default=embedders.default)
    caches = {embedders.default.name: EmbeddingCache(db, embedders.default)}
    notes: list[str] = []
    if data.missing_profile_projects:
        notes.append(f"{data.missing_profile_projects} profile project(s) are not in projects.csv")
    overlap = np.array([data.overlaps(q) for q in data.queries])
    ranks = np.zeros(len(data.queries), dtype=np.int64)
    variant_ranks: dict[str, np.ndarray] = {}
    ranked_lists: dict[int, list[str]] = {}
    seconds: dict[str, float] = {}
    if ablation and not folds:
        raise InputError("--ablation needs --folds (each variant is trained like the matcher)")
    if folds:
        if folds < 2:
            raise InputError("--folds must be at least 2")
        ranker_name = f"learned, re-trained on {folds} folds of target topics (held-out ranks)"
        variants: dict[str, tuple[str, ...] | None] = {"matcher": SHIPPED_SIGNALS}
        if ablation:
            variants.update(ABLATIONS)
        variant_ranks = {name: np.zeros(len(data.queries), dtype=np.int64) for name in variants}
        _cross_fitted(data, embedders, caches, folds, options or TrainingOptions(), overlap,
                      variants, variant_ranks, ranked_lists, progress)
        ranks = variant_ranks.pop("matcher")
    else:
        if model is None:
            model = load_ranker()
        ranker_name = model.meta.get("name", "learned model") if model else "fallback weights"
        if model is not None and set(model.meta.get("call_years", [])) & {q.call_year for q in data.queries}:
            notes.append(
                "in-sample: the ranker was trained on outcomes of these call years; "
                "--folds 5 gives held-out numbers"
            )
        matcher = Matcher(embedders, dict(caches), model)
        for year in sorted({q.call_year for q in data.queries}):
            idx = [i for i, q in enumerate(data.queries) if q.call_year == year]
            calls = data.candidates(year)
            prepared = matcher.prepare([data.profile(data.queries[i]) for i in idx],
                                       [c.call_doc() for c in calls], progress)
            _score_into(matcher, prepared, [data.queries[i] for i in idx], idx, calls, ranks,
                        ranked_lists, progress)
    seconds["matcher"] = round(time.perf_counter() - started, 1)
    base_ranks = np.zeros(len(data.queries), dtype=np.int64)
    t0 = time.perf_counter()
    for year in sorted({q.call_year for q in data.queries}):
        idx = [i for i, q in enumerate(data.queries) if q.call_year == year]
        base = tfidf_baseline(data, [data.queries[i] for i in idx], data.candidates(year))
        base_ranks[idx] = base
    seconds["tfidf"] = round(time.perf_counter() - t0, 1)
    if rankings is not None:
        with rankings.open("w", encoding="utf-8") as fh:
            for i, q in enumerate(data.queries):
                fh.write(json.dumps({"query_id": q.query_id, "ranked": ranked_lists[i]}) + "\n")
    stats = EncodeStats()
    for cache in caches.values():
        stats.add(cache.stats)
    no = ~overlap
    results = {
        "matcher": {"all": metrics(ranks), "no_overlap": metrics(ranks[no])},
        "tfidf": {"all": metrics(base_ranks), "no_overlap": metrics(base_ranks[no])},
    }
    for name, r in variant_ranks.items():
        results[name] = {"all": metrics(r), "no_overlap": metrics(r[no])}
    seconds["total"] = round(time.perf_counter() - started, 1)
    return EvalReport(
        folder=str(folder),
        task=task,
        queries=len(data.queries),
        no_overlap=int(no.sum()),
        results=results,
        ranker=ranker_name,
        embedded={"computed": stats.computed, "cached": stats.cached},
        seconds=seconds,
        notes=notes,
    )


def _score_into(
    matcher: Matcher,
    prepared: Any,
    queries: Sequence[Query],
    positions: Sequence[int],
    calls: Sequence[CordisTopic],
    ranks: np.ndarray,
    ranked_lists: dict[int, list[str]],
    progress: Progress,
) -> None:
    """Ranks of each query's target (and its top list) from the matcher's scores."""
    from horizon_match.scoring import top_indices

    call_index = {c.topic: j for j, c in enumerate(calls)}
    for idx, scores, _ in matcher.scores(prepared, progress):
        for r, i in enumerate(idx):
            q = queries[i]
            ranks[positions[i]] = rank_of(scores[r], call_index[q.target_topic])
            ranked_lists[positions[i]] = [calls[j].topic for j in top_indices(scores[r], RANKED_LENGTH)]


def _collect_outcomes(
    data: CordisFolder,
    base: Matcher,
    model_name: str,
    queries: Sequence[Query],
    hidden: set[str],
    options: TrainingOptions,
    rng: np.random.Generator,
    training: TrainingSet,
    seed: int,
    progress: Progress = NULL_PROGRESS,
) -> None:
    """Training examples from `queries` (their targets are the outcomes learned from); projects
    of `hidden` topics are invisible. Each query's destination profiles leave out the projects
    of its inner fold of target topics, so they never contain its own outcome."""
    inner_of = topic_folds(queries, INNER_FOLDS, seed)
    for inner in range(INNER_FOLDS):
        part = [q for q in queries if inner_of[q.target_topic] == inner]
        if not part:
            continue
        out = hidden | {t for t, f in inner_of.items() if f == inner}
        world = [p for p in data.projects.values() if p.topic not in out]
        matcher = base.derive(destinations=destination_profiles(base, world, model_name))
        for year in sorted({q.call_year for q in part}):
            calls = data.candidates(year)
            call_index = {c.topic: j for j, c in enumerate(calls)}
            year_queries = [q for q in part if q.call_year == year]
            profiles = [data.profile(q, exclude_topics=hidden or None) for q in year_queries]
            keep = [n for n, p in enumerate(profiles) if p.projects]
            prepared = matcher.prepare([profiles[n] for n in keep], [c.call_doc() for c in calls],
                                       progress)
            targets = [call_index[year_queries[n].target_topic] for n in keep]
            collect(matcher, prepared, targets, training, rng, options.negatives)


def _cross_fitted(
    data: CordisFolder,
    embedders: EmbedderSet,
    caches: dict[str, Any],
    k: int,
    options: TrainingOptions,
    overlap: np.ndarray,
    variants: dict[str, tuple[str, ...] | None],
    ranks: dict[str, np.ndarray],
    ranked_lists: dict[int, list[str]],
    progress: Progress,
) -> None:
    """Per fold of target topics: destination profiles and ranker(s) from the other folds'
    outcomes only, then rank the fold's queries. `variants` name feature subsets (None = all);
    the first one is the matcher whose top lists are kept."""
    from horizon_match.scoring import top_indices

    fold_of = topic_folds(data.queries, k, options.seed)
    model_name = embedders.default.name
    base = Matcher(embedders, dict(caches))
    main = next(iter(variants))
    years = sorted({q.call_year for q in data.queries})
    progress.start(f"cross-fitting on {k} folds", k)
    for fold in range(k):
        held = {t for t, f in fold_of.items() if f == fold}
        # the world the fold's model may know: no project of a held-out topic
        world = [p for p in data.projects.values() if p.topic not in held]
        dests = destination_profiles(base, world, model_name)
        matcher = base.derive(destinations=dests)
        rng = np.random.default_rng(options.seed + fold)
        training = TrainingSet()
        train = [
            q for i, q in enumerate(data.queries) if q.target_topic not in held and not overlap[i]
        ]
        _collect_outcomes(data, base, model_name, train, held, options, rng, training,
                          seed=options.seed + 100 + fold)
        models = {
            name: fit_ranker(training, replace(options, features=feats), dests,
                             {"model": model_name, "fold": fold})
            for name, feats in variants.items()
        }
        del training
        for year in years:
            calls = data.candidates(year)
            call_index = {c.topic: j for j, c in enumerate(calls)}
            test = [i for i, q in enumerate(data.queries) if q.call_year == year and q.target_topic in held]
            if not test:
                continue
            prepared = matcher.prepare([data.profile(data.queries[i]) for i in test],
                                       [c.call_doc() for c in calls])
            for idx in matcher.chunks(prepared):
                planes, _ = matcher.feature_planes(prepared, idx)
                for name, model in models.items():
                    scores = model.score_planes(planes)
                    for r, i in enumerate(idx):
                        q = data.queries[test[i]]
                        ranks[name][test[i]] = rank_of(scores[r], call_index[q.target_topic])
                        if name == main:
                            ranked_lists[test[i]] = [
                                calls[j].topic for j in top_indices(scores[r], RANKED_LENGTH)
                            ]
        progress.advance()
    progress.finish()


def train_ranker_from_cordis(
    db: Database,
    settings: Settings,
    folder: Path,
    output: Path,
    *,
    options: TrainingOptions | None = None,
    embedder: Any = None,
    progress: Progress = NULL_PROGRESS,
) -> RankerModel:
    """Train the shipped ranker on every no-overlap query of `folder` and save it."""
    options = options or TrainingOptions()
    data = read_cordis_folder(folder, "a")
    embedders = EmbedderSet.of(embedder) if embedder is not None else load_embedder_set(settings)
    embedders = EmbedderSet(default=embedders.default)
    caches = {embedders.default.name: EmbeddingCache(db, embedders.default)}
    if options.features is None:
        options = replace(options, features=SHIPPED_SIGNALS)
    base = Matcher(embedders, caches)
    model_name = embedders.default.name
    rng = np.random.default_rng(options.seed)
    training = TrainingSet()
    years = sorted({q.call_year for q in data.queries})
    train = [q for q in data.queries if not data.overlaps(q)]
    _collect_outcomes(data, base, model_name, train, set(), options, rng, training,
                      seed=options.seed + 100, progress=progress)
    # the shipped profiles know every outcome of the folder (they serve later calls)
    dests = None
    if set(options.features) & set(_DESTINATIONS):
        dests = destination_profiles(base, list(data.projects.values()), model_name)
    ranker = fit_ranker(
        training,
        options,
        dests,
        {
            "name": f"learned on CORDIS call years {', '.join(map(str, years))}",
            "model": embedders.default.name,
            "call_years": years,
            "source": folder.name,
            "queries": len(training),
        },
    )
    ranker.save(output)
    return ranker
