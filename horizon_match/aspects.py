"""Splitting a call into the aspects a team has to cover.

A Horizon topic text says what it wants in two places: "Expected Outcome" (what projects
should achieve) and "Scope" (what they should do). Their sentences, minus the boilerplate
every topic repeats (how to apply, SSH, open science, cooperation with other projects...), are
grouped by meaning into a few aspects; each aspect has a vector (the mean of its sentences)
and a short label taken from its most central sentence. A call without a description has one
aspect: its title.

Pure functions: the caller passes an `encode` function (texts -> L2-normalised vectors), so
tests use a fake embedder and the product the cached real model.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

MIN_SENTENCE_CHARS = 40
MAX_SENTENCES = 60
MAX_ASPECTS = 6
LABEL_CHARS = 70

_SECTION = re.compile(
    r"(Expected Outcomes?|Expected Impacts?|Scope|Objective|Specific Topic Conditions|"
    r"Specific conditions)\s*:",
    re.IGNORECASE,
)
# Paragraph borders glued by HTML stripping: "base.Users'" / "outcomes:Key data"
_GLUED = re.compile(r"(?<=[a-z0-9)\]][.!?:;])(?=[A-Z\"'“])|(?<=[a-z][a-z])(?=[A-Z][a-z]{2})|(?<=\d)(?=[A-Z][a-z])")
_FOOTNOTE = re.compile(r"\[\d+\]")
_URL = re.compile(r"https?://\S+")
_SENTENCE = re.compile(r"(?<=[.!?;])\s+(?=[A-Z0-9\"'“(])|\s*\n+\s*|\s+[•·▪-]\s+")
_LEAD_IN = re.compile(
    r"^(projects?|proposals?|applicants?|actions?|the (?:project|action|proposal)s?|this topic)"
    r"\s+(?:are|is|should|must|will|shall|could|can|may)?\s*(?:expected|encouraged|invited|"
    r"required|asked)?\s*(?:to\s+)?(?:contribute to|address|deliver|develop|include|cover|"
    r"focus on|aim at|aim to|achieve|demonstrate|consider|carry out)?\s*(?:all of )?"
    r"(?:the following|one or more of the following|some of the following)?"
    r"(?: expected outcomes?)?\s*:?\s*",
    re.IGNORECASE,
)
# Sentences every topic carries; they name no competence a partner could bring.
_BOILERPLATE = re.compile(
    r"social sciences and humanities|\bSSH\b|open science|gender dimension|"
    r"international cooperation|clustering|cooperate with (?:other )?(?:projects|actions)|"
    r"synergies with|budget|lump sum|EUR \d|million|eligib|admissib|"
    r"specific topic conditions|technology readiness level|TRL \d|"
    r"this topic (?:is|will be) (?:part of|implemented)|in line with the|"
    r"proposals? (?:should|must|are expected to) (?:build on|take into account|demonstrate "
    r"the|include a|describe|provide)|"
    r"applicants? (?:should|are invited|must|are encouraged)|selected projects|"
    r"dissemination|communication activities|exploitation|"
    r"projects should contribute to (?:all|some|one or more) of the following|"
    # conditions and advice, not what the call is about (their rare words made labels such
    # as "does, exclude" or "accordingly, earmark"; seen on the 2026-27 topics)
    r"does not exclude|(?:is|are) excluded|(?:is|are) (?:strongly )?encouraged|"
    r"international collaboration|earmark|work package|TRLs? \d|credible strategy",
    re.IGNORECASE,
)
_LABEL_STOP = re.compile(r"[,;:(]| – | - | which | that | in order to | so as to ")


@dataclass(frozen=True)
class Aspect:
    label: str  # a short phrase for people
    text: str  # the sentences it stands for
    vector: np.ndarray
    weight: float  # share of the call's text; the weights sum to 1


def clean_description(text: str) -> str:
    text = _URL.sub(" ", _FOOTNOTE.sub("", text or ""))
    return _GLUED.sub(" ", text)


def sections(text: str) -> dict[str, str]:
    """{'expected outcome': ..., 'scope': ..., 'other': ...} of a cleaned description."""
    out: dict[str, str] = {}
    marks = list(_SECTION.finditer(text))
    if not marks:
        return {"other": text.strip()}
    if marks[0].start() > 0:
        out["other"] = text[: marks[0].start()].strip()
    for m, nxt in zip(marks, [*marks[1:], None], strict=False):
        name = m.group(1).lower().rstrip("s")
        if name.startswith("expected outcome") or name.startswith("expected impact"):
            name = "expected outcome"
        body = text[m.end() : nxt.start() if nxt else len(text)].strip()
        out[name] = (out.get(name, "") + " " + body).strip()
    return out


def aspect_sentences(description: str) -> list[str]:
    """The sentences of a description that describe what the work is about."""
    parts = sections(clean_description(description))
    wanted = [parts.get("expected outcome", ""), parts.get("scope", "")]
    if not any(wanted):
        wanted = [parts.get("other", "")]
    sentences: list[str] = []
    for body in wanted:
        for raw in _SENTENCE.split(body):
            s = " ".join(raw.split()).strip(" -•·")
            if len(s) < MIN_SENTENCE_CHARS or _BOILERPLATE.search(s):
                continue
            sentences.append(s)
    return sentences[:MAX_SENTENCES]


def label_of(sentence: str) -> str:
    """A short label: the sentence without its lead-in, cut at the first clause border."""
    s = _LEAD_IN.sub("", sentence).strip()
    s = s[:1].upper() + s[1:] if s else sentence
    cut = _LABEL_STOP.search(s, 20)
    if cut and cut.start() <= LABEL_CHARS:
        s = s[: cut.start()]
    if len(s) > LABEL_CHARS:
        s = s[:LABEL_CHARS].rsplit(" ", 1)[0] + "…"
    return s.rstrip(" .;:,")


def keyword_labels(sentences: Sequence[str], groups: Sequence[Sequence[int]], n_terms: int = 3) -> list[str]:
    """Per group, its most distinctive terms (two-word phrases first): frequent in the group,
    rare in the rest of the call."""
    from sklearn.feature_extraction.text import CountVectorizer

    from horizon_match.lexical import STOP_WORDS

    try:
        counter = CountVectorizer(
            lowercase=True, stop_words=sorted(STOP_WORDS), ngram_range=(1, 2),
            token_pattern=r"(?u)\b[^\W\d_][\w\-]*[^\W_]\b",
        )
        counts = counter.fit_transform(sentences).toarray()
    except ValueError:  # nothing but stop words
        return [label_of(sentences[g[0]]) for g in groups]
    terms = counter.get_feature_names_out()
    df = (counts > 0).sum(axis=0)
    idf = np.log((1 + len(sentences)) / (1 + df)) + 1.0
    # a two-word phrase is a term only when the call uses it more than once
    # ("battery storage"); once, it is mostly two neighbouring words ("batteries validated")
    bigram = np.array([" " in t for t in terms]) & (counts.sum(axis=0) >= 2)
    counts = counts * ~(np.array([" " in t for t in terms]) & ~bigram)
    labels = []
    for g in groups:
        tf = counts[list(g)].sum(axis=0)
        score = tf * idf * np.where(bigram, 1.6, 1.0) * (tf > 0)
        chosen: list[str] = []
        for t in np.argsort(-score, kind="stable"):
            if score[t] <= 0 or len(chosen) == n_terms:
                break
            term = str(terms[t])
            # a term sharing a word with a chosen one adds nothing ("pro rata", "rata temporis")
            words = set(term.split())
            if any(words & set(c.split()) for c in chosen):
                continue
            chosen.append(term)
        labels.append(", ".join(chosen) if chosen else label_of(sentences[g[0]]))
    return labels


def number_of_aspects(n_sentences: int) -> int:
    if n_sentences <= 2:
        return max(1, n_sentences)
    return int(min(MAX_ASPECTS, max(2, round(n_sentences ** 0.5))))


def split_aspects(
    title: str,
    description: str,
    encode: Callable[[Sequence[str]], np.ndarray],
    *,
    max_aspects: int = MAX_ASPECTS,
) -> list[Aspect]:
    """The aspects of a call, largest first. Never empty: a call without usable text gets one
    aspect, its title (or 'the call' when even that is empty)."""
    sentences = aspect_sentences(description)
    if not sentences:
        head = " ".join((title or "").split()) or "the call"
        vector = encode([head])[0]
        return [Aspect(label_of(head), head, vector, 1.0)]
    vectors = encode(sentences)
    k = min(max_aspects, number_of_aspects(len(sentences)))
    groups = _cluster(vectors, k)
    labels = keyword_labels(sentences, groups)
    aspects: list[Aspect] = []
    for members, label in zip(groups, labels, strict=True):
        centre = vectors[members].mean(axis=0)
        norm = float(np.linalg.norm(centre))
        centre = centre / norm if norm > 0 else centre
        aspects.append(Aspect(
            label=label,
            text=" ".join(sentences[i] for i in members),
            vector=centre.astype(np.float32),
            weight=len(members) / len(sentences),
        ))
    aspects.sort(key=lambda a: -a.weight)
    return _distinct_labels(aspects)


def _cluster(vectors: np.ndarray, k: int) -> list[list[int]]:
    """Deterministic k-means (farthest-point start) over normalised vectors; empty clusters
    are dropped. Order of the result: by first sentence."""
    n = vectors.shape[0]
    if k <= 1 or n <= 1:
        return [list(range(n))]
    centres = [0]
    dist = 1.0 - vectors @ vectors[0]
    for _ in range(1, k):
        nxt = int(np.argmax(dist))
        if dist[nxt] <= 1e-6:
            break
        centres.append(nxt)
        dist = np.minimum(dist, 1.0 - vectors @ vectors[nxt])
    C = vectors[centres].copy()
    assign = np.zeros(n, dtype=np.int64)
    for _ in range(20):
        new = np.argmax(vectors @ C.T, axis=1)
        if np.array_equal(new, assign) and _ > 0:
            break
        assign = new
        for c in range(C.shape[0]):
            rows = vectors[assign == c]
            if rows.size:
                centre = rows.mean(axis=0)
                C[c] = centre / max(float(np.linalg.norm(centre)), 1e-9)
    groups = [list(np.flatnonzero(assign == c)) for c in range(C.shape[0])]
    groups = [g for g in groups if g]
    groups.sort(key=lambda g: g[0])
    return groups


def _distinct_labels(aspects: list[Aspect]) -> list[Aspect]:
    seen: set[str] = set()
    out = []
    for a in aspects:
        label = a.label
        n = 2
        while label.lower() in seen:
            label = f"{a.label} ({n})"
            n += 1
        seen.add(label.lower())
        out.append(Aspect(label, a.text, a.vector, a.weight))
    return out
