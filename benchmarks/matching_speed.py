"""Speed and memory of matching.

    python benchmarks/matching_speed.py throughput [--passages 1000]
    python benchmarks/matching_speed.py scale [--profiles 30000] [--calls 2000] [--top 10]
    python benchmarks/matching_speed.py stages [--profiles 30000] [--calls 2000] [--top 10]
    python benchmarks/matching_speed.py command [--profiles 30000] [--calls 2000] [--top 10]

`throughput`: the shipped model's raw `SentenceTransformer.encode` against the cached path
(`EmbeddingCache.encode` into a fresh SQLite file: hashing, batching, storing) on the same
passages (title + objective of CORDIS dev projects, split as the matcher splits them). Each
is run twice, alternating, and the faster run of each is kept (the machine is shared).

`stages`: the first --profiles profiles of the 30,000-profile scale database (built if
missing), in this process on one thread (BLAS included): CPU time of prepare (everything at
once, as the evaluation does), features, scoring and explanations, and the process's memory
before, at the peak of and after the TF-IDF counting.

`scale`: --profiles member profiles against --calls calls, every vector already in the cache.
Texts are built from the words of the CORDIS dev projects and the live topics (each profile: a
description, keywords and two past projects with topics; each call: a header and three scope
passages); their vectors are random unit vectors written straight into the `embeddings` table
under the shipped ranker's model name, and the embedder used for the run refuses to encode, so
any cache miss would fail. The timed part runs in a fresh process and is what `horizon-match
match` runs (`Matcher.rank_profiles`): the calls prepared once, then the profiles a batch at a
time (split, vectors read from the cache, counted against the calls' vocabulary) while earlier
batches go through features, the shipped ranker, the top --top calls per profile and their
explanations. Prints wall time, CPU time and peak RSS of that process.

`command`: the whole of `horizon-match match` on the same data: a copy of the scale database
with the profiles stored as members (each with its organisation and two own past projects) and
the calls as open calls; the timed part, in a fresh process, is `run_matching`: members and
calls read from the tables, each member's language detected, eligibility, matching, and every
match stored with its explanation.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DEV = ROOT.parent / "shared" / "data" / "cordis_dev"
WORK = ROOT / "data" / "bench" / "matching"
# the embedder name the vectors are stored under. By default the shipped ranker's model, so the
# run takes the production path: the ranker reads the dense similarities and the destination
# profiles (the vectors are random, so their values mean nothing, but the work is the same).
# `--model bench-random-384` reproduces the setup of the numbers measured before 2026-12-04:
# under a name the ranker was not trained on, the destination features and the raw dense
# similarities are replaced by constants, which skips part of the work.
MODEL = "all-MiniLM-L6-v2"
EARLIER_MODEL = "bench-random-384"
DIM = 384


def _project_texts(n: int) -> list[str]:
    csv.field_size_limit(sys.maxsize)
    with (DEV / "projects.csv").open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return [f"{r['title']}. {r['objective']}" for r in rows[:n]]


def throughput(n_projects: int) -> None:
    import torch

    from horizon_match.db import Database
    from horizon_match.embedding import EmbeddingCache, load_embedder, split_passages

    torch.set_num_threads(2)
    embedder = load_embedder("all-MiniLM-L6-v2")
    texts = _project_texts(n_projects)
    passages = [p for ps in split_passages(texts, embedder) for p in ps[:2]]
    model = embedder._load()  # the raw SentenceTransformer, for the reference timing
    model.encode(passages[:64], batch_size=32)  # warm-up
    raw, cached = [], []
    for attempt in range(2):
        t = time.perf_counter()
        model.encode(passages, batch_size=32, normalize_embeddings=True, show_progress_bar=False)
        raw.append(time.perf_counter() - t)
        path = WORK / f"throughput-{attempt}.db"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
        db = Database(f"sqlite:///{path}")
        t = time.perf_counter()
        EmbeddingCache(db, embedder).encode(passages)
        cached.append(time.perf_counter() - t)
        db.close()
    n = len(passages)
    print(json.dumps({
        "passages": n,
        "raw_encode_s": round(min(raw), 1),
        "raw_passages_per_s": round(n / min(raw), 1),
        "cached_path_s": round(min(cached), 1),
        "cached_passages_per_s": round(n / min(cached), 1),
        "ratio": round(min(raw) / min(cached), 3),
    }))


def _vocabulary() -> list[str]:
    words: list[str] = []
    for text in _project_texts(1500):
        words.extend(w for w in text.split() if w.isalpha() and len(w) > 3)
    return words


def _scale_data(n_profiles: int, n_calls: int) -> tuple[list, list]:
    from horizon_match.scoring import CallDoc, PastProject, Profile

    rng = random.Random(0)
    words = _vocabulary()
    parts = ["CL4", "CL5", "CL6", "HLTH", "CL2", "CL3", "MISS", "JU-SNS", "JTI-CLEANH2"]
    dests = ["D1", "D2", "D3", "DATA", "DIGITAL", "FARM", "OCEAN"]

    def sentence(k: int) -> str:
        return " ".join(rng.choice(words) for _ in range(k)).capitalize() + "."

    def topic() -> str:
        return f"HORIZON-{rng.choice(parts)}-2024-{rng.choice(dests)}-0{rng.randint(1, 3)}-{rng.randint(1, 20):02d}"

    calls = [
        CallDoc(
            key=f"HORIZON-{rng.choice(parts)}-2026-{rng.choice(dests)}-01-{j:04d}",
            title=sentence(8),
            destination=sentence(5),
            call_title=sentence(6),
            description=" ".join(sentence(25) for _ in range(8)),
            type_of_action=rng.choice(["HORIZON-RIA", "HORIZON-IA", "HORIZON-CSA"]),
        )
        for j in range(n_calls)
    ]
    profiles = [
        Profile(
            key=f"m{i}",
            description=sentence(40),
            keywords=tuple(rng.choice(words) for _ in range(5)),
            projects=[
                PastProject(title=sentence(6), summary=sentence(60), topic=topic(),
                            funding_scheme=rng.choice(["HORIZON-RIA", "HORIZON-IA"]))
                for _ in range(2)
            ],
            organisation_type=rng.choice(["company", "university", "research", "public"]),
            country="IT",
        )
        for i in range(n_profiles)
    ]
    return profiles, calls


class _NoEncoding:
    """Stands in for a model whose every vector is cached: encoding would be a cache miss."""

    dim = DIM
    max_tokens = 128

    def __init__(self, name: str = MODEL) -> None:
        self.name = name

    def encode(self, texts):  # type: ignore[no-untyped-def]
        raise RuntimeError(f"cache miss for {len(texts)} texts")


def _db_path(n_profiles: int, n_calls: int, model: str) -> Path:
    suffix = "" if model == EARLIER_MODEL else f"-{model}"
    return WORK / f"scale-{n_profiles}-{n_calls}{suffix}.db"


def scale_setup(n_profiles: int, n_calls: int, model: str = MODEL) -> Path:
    from sqlalchemy import insert

    from horizon_match.db import Database
    from horizon_match.embedding import text_hash
    from horizon_match.scoring import Matcher
    from horizon_match.embedding import EmbedderSet
    from models.tables import Embedding

    path = _db_path(n_profiles, n_calls, model)
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    profiles, calls = _scale_data(n_profiles, n_calls)
    embedder = _NoEncoding(model)
    matcher = Matcher(EmbedderSet(embedder))
    texts: set[str] = set()
    from horizon_match.scoring import _profile_units

    for c in calls:
        texts.update(p for ps in matcher.split([c.header()], embedder) for p in ps[:1])
        texts.update(p for ps in matcher.split([c.description], embedder) for p in ps[:8])
    for p in profiles:
        for unit in _profile_units(p, embedder, matcher.split):
            texts.update(unit.passages)
    rng = np.random.default_rng(0)
    db = Database(f"sqlite:///{path}")
    rows = []
    for t in texts:
        v = rng.standard_normal(DIM).astype(np.float32)
        rows.append({"model": model, "content_hash": text_hash(t), "dim": DIM,
                     "vector": (v / np.linalg.norm(v)).astype("<f4").tobytes()})
    with db.session() as s:
        for start in range(0, len(rows), 5000):
            s.execute(insert(Embedding), rows[start:start + 5000])
    db.close()
    print(f"cached {len(rows)} passage vectors in {path}", file=sys.stderr)
    return path


def scale_run(path: Path, n_profiles: int, n_calls: int, top: int, model: str = MODEL) -> None:
    from horizon_match.db import Database
    from horizon_match.embedding import EmbedderSet, EmbeddingCache
    from horizon_match.ranker import load_ranker
    from horizon_match.scoring import Matcher

    profiles, calls = _scale_data(n_profiles, n_calls)
    db = Database(f"sqlite:///{path}")
    embedder = _NoEncoding(model)
    t0 = time.perf_counter()
    c0 = time.process_time()
    matcher = Matcher(EmbedderSet(embedder), {model: EmbeddingCache(db, embedder)}, load_ranker())
    # what `horizon-match match` runs: calls prepared once, profiles a batch at a time
    ranked, stats = matcher.rank_profiles(profiles, calls, top)
    t2 = time.perf_counter()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({
        "profiles": n_profiles,
        "calls": n_calls,
        "top": top,
        "matches": sum(len(r) for r in ranked),
        "embedded": stats.computed,
        "wall_s": round(t2 - t0, 1),
        "cpu_s": round(time.process_time() - c0, 1),
        "peak_rss_mib": round(rss),
    }))


def command_setup(n_profiles: int, n_calls: int, model: str = MODEL) -> Path:
    """A copy of the scale database with the same profiles stored as members (organisation,
    description, keywords, two own past projects) and the same calls stored as open calls,
    so that `run_matching` reads from the tables the texts whose vectors are cached."""
    import shutil
    from datetime import datetime, timedelta

    from sqlalchemy import insert

    from horizon_match.db import Database
    from models.tables import Call, Member, Organisation, Participation, Project

    source = scale_setup(n_profiles, n_calls, model)
    path = source.with_name(source.stem + "-command.db")
    if path.exists():
        return path
    work = path.with_suffix(".part")
    shutil.copyfile(source, work)
    profiles, calls = _scale_data(n_profiles, n_calls)
    now = datetime(2026, 1, 1)
    db = Database(f"sqlite:///{work}")
    with db.session() as s:
        s.execute(insert(Organisation), [
            {"id": i + 1, "name": f"Organisation {p.key}", "country": p.country,
             "organisation_type": p.organisation_type}
            for i, p in enumerate(profiles)])
        s.execute(insert(Member), [
            {"id": p.key, "organisation_id": i + 1, "name": p.key, "emails": [],
             "description": p.description, "keywords": list(p.keywords), "preferences": {},
             "language": None, "created_at": now, "updated_at": now}
            for i, p in enumerate(profiles)])
        s.execute(insert(Project), [
            {"id": f"member:{p.key}:{k + 1}", "source": "member", "title": project.title,
             "objective": project.summary, "topic": project.topic,
             "funding_scheme": project.funding_scheme}
            for p in profiles for k, project in enumerate(p.projects)])
        s.execute(insert(Participation), [
            {"project_id": f"member:{p.key}:{k + 1}", "organisation_id": i + 1,
             "role": "participant"}
            for i, p in enumerate(profiles) for k in range(len(p.projects))])
        deadline = datetime.now() + timedelta(days=3650)  # open whenever the benchmark runs
        s.execute(insert(Call), [
            {"identifier": c.key, "programme": "HORIZON", "title": c.title,
             "destination": c.destination, "call_title": c.call_title,
             "description": c.description, "type_of_action": c.type_of_action,
             "status": "open", "deadlines": [{"at": deadline.isoformat(), "stage": None}],
             "next_deadline": deadline, "keywords": [], "content_hash": f"bench-{j}",
             "first_seen": now, "last_seen": now}
            for j, c in enumerate(calls)])
    db.close()
    work.rename(path)
    return path


def command_run(path: Path, top: int, model: str = MODEL) -> None:
    """`horizon-match match` as the CLI runs it (`run_matching`: members and calls read from
    the tables, eligibility, matching, every match stored), timed in this fresh process."""
    from horizon_match.config import load_settings
    from horizon_match.db import Database
    from horizon_match.matching import run_matching

    db = Database(f"sqlite:///{path}")
    settings = load_settings({}, db=f"sqlite:///{path}")
    t0 = time.perf_counter()
    c0 = time.process_time()
    summary = run_matching(db, settings, embedder=_NoEncoding(model), top_k=top)
    t1 = time.perf_counter()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({
        "members": summary.members,
        "calls": summary.calls,
        "top": top,
        "matches": summary.matches,
        "embedded": summary.embedded.computed,
        "wall_s": round(t1 - t0, 1),
        "cpu_s": round(time.process_time() - c0, 1),
        "peak_rss_mib": round(rss),
    }))


def stages(path: Path, n_profiles: int, n_calls: int, top: int, model: str = MODEL) -> None:
    """CPU time of each stage on one thread, and memory around the TF-IDF fit (in-process)."""
    from horizon_match import lexical
    from horizon_match.db import Database
    from horizon_match.embedding import EmbedderSet, EmbeddingCache
    from horizon_match.ranker import load_ranker
    from horizon_match.scoring import Matcher

    def rss_mib() -> int:
        with open("/proc/self/status") as fh:
            return next(int(line.split()[1]) // 1024 for line in fh if line.startswith("VmRSS"))

    count = lexical.LexicalIndex.count
    memory: dict[str, int] = {}

    def measured_count(self, texts):  # type: ignore[no-untyped-def]
        memory["before_count_mib"] = rss_mib()
        out = count(self, texts)
        memory["count_peak_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        memory["after_count_mib"] = rss_mib()
        return out

    lexical.LexicalIndex.count = measured_count  # type: ignore[method-assign]
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")  # one thread means BLAS too
    profiles, calls = _scale_data(n_profiles, n_calls)
    db = Database(f"sqlite:///{path}")
    embedder = _NoEncoding(model)
    matcher = Matcher(EmbedderSet(embedder), {model: EmbeddingCache(db, embedder)}, load_ranker(),
                      threads=1)
    c = time.process_time()
    prepared = matcher.prepare(profiles, calls)
    cpu = {"prepare": time.process_time() - c, "features": 0.0, "scoring": 0.0}
    for idx in matcher.chunks(prepared):
        c = time.process_time()
        planes, _ = matcher.feature_planes(prepared, idx, complete=False)  # as rank() does
        cpu["features"] += time.process_time() - c
        c = time.process_time()
        matcher.score_planes(planes)
        cpu["scoring"] += time.process_time() - c
    c = time.process_time()
    matcher.rank(prepared, top, explain=False)
    plain = time.process_time() - c
    c = time.process_time()
    matcher.rank(prepared, top)
    cpu["explanations"] = time.process_time() - c - plain
    print(json.dumps({"profiles": n_profiles, "calls": n_calls,
                      **{f"{k}_cpu_s": round(v, 2) for k, v in cpu.items()}, **memory}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=["throughput", "scale", "scale-run", "command", "command-run",
                                         "stages"])
    parser.add_argument("--db-file", help=argparse.SUPPRESS)  # command-run: the database
    parser.add_argument("--passages", type=int, default=1000, help="projects for throughput")
    parser.add_argument("--profiles", type=int, default=30000)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--top", type=int, default=10)
    parser.add_argument("--model", default=MODEL,
                        help=f"embedder name of the cached vectors (default {MODEL}: the "
                        f"production path; {EARLIER_MODEL}: the setup of the earlier numbers)")
    args = parser.parse_args()
    if args.what == "throughput":
        throughput(args.passages)
    elif args.what == "scale":
        scale_setup(args.profiles, args.calls, args.model)
        # a fresh process, so its peak memory is the matching's own
        subprocess.run([sys.executable, __file__, "scale-run", "--profiles", str(args.profiles),
                        "--calls", str(args.calls), "--top", str(args.top), "--model", args.model],
                       check=True)
    elif args.what == "command":
        import shutil

        # each run on a fresh copy: a run adds its 300,000 matches to the database it uses
        path = command_setup(args.profiles, args.calls, args.model)
        run_copy = path.with_name(path.stem + "-run.db")
        shutil.copyfile(path, run_copy)
        try:
            subprocess.run([sys.executable, __file__, "command-run", "--db-file", str(run_copy),
                            "--top", str(args.top), "--model", args.model], check=True)
        finally:
            run_copy.unlink(missing_ok=True)
    elif args.what == "command-run":
        command_run(Path(args.db_file), args.top, args.model)
    elif args.what == "stages":
        # the profiles are the first --profiles of the 30,000-profile scale database
        stages(scale_setup(30000, args.calls, args.model), args.profiles, args.calls, args.top,
               args.model)
    else:
        scale_run(_db_path(args.profiles, args.calls, args.model), args.profiles, args.calls,
                  args.top, args.model)

if __name__ == "__main__":
    main()
