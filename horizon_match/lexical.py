"""Lexical similarity: TF-IDF over words and two-word phrases, so exact technical terms count.

Vocabulary and IDF are learned from the calls of one matching run (only a term some call uses
can be shared with a call); then each member profile (all its texts together) is compared with
each call by cosine. A profile's vector is thus normalised over the terms calls use: its words
no call uses do not dilute it, so a broad profile with one relevant term scores higher than it
would against its whole vocabulary. Nothing of a profile's weights depends on the other
profiles of the run, so profiles are prepared a batch at a time while earlier batches are
scored (held-out quality the same as with IDF over every text, BENCHMARKS.md).
`shared_terms` gives the highest-weighted terms a member and a call have in common, for the
explanation line.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from itertools import chain, repeat
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, CountVectorizer
from sklearn.preprocessing import normalize

# words every call and project uses; they carry no topic
_DOMAIN_STOP_WORDS = frozenset(
    """project projects proposal proposals action actions activities activity call calls topic
    topics expected outcome outcomes scope work programme horizon europe european eu new
    innovative innovation research development develop developing developed based use using
    used results impact impacts will also well including support area areas aim aims objective
    objectives approach approaches solutions solution need needs different main key
    partners partner consortium demonstrate demonstration relevant specific particular
    address addressing contribute contribution field fields""".split()
)
STOP_WORDS = frozenset(ENGLISH_STOP_WORDS) | _DOMAIN_STOP_WORDS
# tokens: a letter, then letters, digits or hyphens, ending on a letter or digit ("5g-enabled",
# "h2" but not "2030"). (An earlier form added "|\b[^\W\d_]{2,}\b": whatever that matches, the
# first part matches first, so it only cost time: the same tokens, scans ~25 % faster in a
# one-off timing.)
_TOKEN_PATTERN = r"(?u)\b[^\W\d_][\w\-]*[^\W_]\b"


# texts counted at a time (see _count_new_vocabulary)
COUNT_BLOCK = 4096


class LexicalIndex:
    """TF-IDF (sublinear term frequency, smooth IDF, L2 norm) over one corpus.

    Term counts are kept separate from weighting so a profile made of several texts is weighted
    exactly as the concatenation of its texts (`combine`) without re-tokenising anything.
    """

    def __init__(self, *, max_features: int | None = 200_000) -> None:
        self.counter = CountVectorizer(
            lowercase=True,
            stop_words=sorted(STOP_WORDS),
            token_pattern=_TOKEN_PATTERN,
            ngram_range=(1, 2),
            max_features=max_features,
            dtype=np.float32,
        )
        self.idf = np.zeros(0, dtype=np.float32)
        self._terms: np.ndarray | None = None
        self._term_list: list[str] | None = None
        self._tables: tuple[Any, dict[str, int], np.ndarray, np.ndarray, np.ndarray] | None = None

    def fit(self, texts: Sequence[str]) -> sparse.csr_matrix:
        """Learn vocabulary and IDF from `texts` (the calls of a run); returns their counts.

        Only a term some call uses can be shared with a call, and document frequencies come
        from the calls only: a profile's weights then do not depend on the other profiles of
        the run, so profiles can be prepared and scored a batch at a time (measured: no cost
        in held-out quality, BENCHMARKS.md), and a member's scores do not move when another
        member joins."""
        corpus = [t or "" for t in texts]
        counts = self._count_new_vocabulary(corpus)
        if counts is None:
            # nothing but stop words where the vocabulary comes from: a one-word vocabulary
            self.counter.set_params(stop_words=None, token_pattern=r"(?u)\S+")
            counts = self._count_new_vocabulary(["empty", *corpus])
            assert counts is not None
            counts = counts[1:]
        self._terms = None
        self._term_list = None
        self._tables = None
        self._count_tables()  # built here, not by whichever thread counts first
        df = np.bincount(counts.indices, minlength=counts.shape[1])
        n = counts.shape[0]
        self.idf = (np.log((1.0 + n) / (1.0 + df)) + 1.0).astype(np.float32)
        return counts

    def count(self, texts: Sequence[str]) -> sparse.csr_matrix:
        """Term counts of `texts` against the learned vocabulary (terms it lacks are dropped)."""
        find, lookup, unigram, pair_keys, pair_terms = self._count_tables()
        width = len(self.counter.vocabulary_)
        n_words = len(unigram)
        blocks: list[sparse.csr_matrix] = []
        # Every token of a block goes through C-level loops only (the regex, a dict lookup per
        # token through map, NumPy): a Python expression per token made this the slowest part
        # of preparing 30,000 profiles. Word ids: >= 0 a word of the vocabulary, -1 another
        # word, -2 a stop word (dropped before phrases are formed, as the analyser does).
        for start in range(0, len(texts), COUNT_BLOCK):
            block = texts[start : start + COUNT_BLOCK]
            tokens = [find(text.lower()) if text else [] for text in block]
            lengths = np.fromiter(map(len, tokens), dtype=np.int64, count=len(block))
            words = np.fromiter(map(lookup.get, chain.from_iterable(tokens), repeat(-1)),
                                dtype=np.int64, count=int(lengths.sum()))
            text_of = np.repeat(np.arange(len(block)), lengths)
            kept = words != -2
            words, text_of = words[kept], text_of[kept]
            known = words >= 0
            singles = unigram[words[known]]
            rows = [text_of[known][singles >= 0]]
            cols = [singles[singles >= 0]]
            if len(pair_keys) and len(words) > 1:
                first, second = words[:-1], words[1:]
                pair = (text_of[:-1] == text_of[1:]) & (first >= 0) & (second >= 0)
                keys = first[pair] * n_words + second[pair]
                at = np.minimum(np.searchsorted(pair_keys, keys), len(pair_keys) - 1)
                hit = pair_keys[at] == keys
                rows.append(text_of[:-1][pair][hit])
                cols.append(pair_terms[at[hit]])
            r, c = np.concatenate(rows), np.concatenate(cols)
            counts = sparse.csr_matrix(
                (np.ones(len(r), dtype=np.float32), (r, c)), shape=(len(block), width)
            )
            counts.sum_duplicates()
            blocks.append(counts)
        return _stack(blocks, width)

    def _count_tables(self) -> tuple[Any, dict[str, int], np.ndarray, np.ndarray, np.ndarray]:
        """What `count` needs, built once per fit: the tokeniser, word ids (stop words -2),
        each word's term id (-1: the word is only part of phrases) and the phrases as sorted
        (first word id x number of words + second word id) keys with their term ids."""
        if self._tables is not None:
            return self._tables
        c = self.counter
        words: dict[str, int] = {}
        singles: list[tuple[int, int]] = []
        phrases: list[tuple[int, int, int]] = []
        for term, j in c.vocabulary_.items():
            parts = term.split(" ")  # a word, or a phrase of two (ngram_range (1, 2))
            if len(parts) == 1:
                singles.append((words.setdefault(term, len(words)), j))
            else:
                first, second = parts
                a = words.setdefault(first, len(words))
                phrases.append((a, words.setdefault(second, len(words)), j))
        unigram = np.full(len(words), -1, dtype=np.int64)
        for w, j in singles:
            unigram[w] = j
        keys = np.array([a * len(words) + b for a, b, _ in phrases], dtype=np.int64)
        terms = np.array([j for _, _, j in phrases], dtype=np.int64)
        order = np.argsort(keys)
        lookup = dict(words)
        for word in c.get_stop_words() or ():
            lookup.setdefault(word, -2)
        self._tables = (re.compile(c.token_pattern).findall, lookup, unigram, keys[order], terms[order])
        return self._tables

    def _count_new_vocabulary(self, corpus: list[str]) -> sparse.csr_matrix | None:
        """CountVectorizer.fit_transform without its alphabetical sort of the vocabulary (term
        order does not matter to cosines). Terms are numbered in order of first appearance;
        above max_features the most frequent are kept, ties going to the earlier term. None
        when no term was learned."""
        analyze = self._analyzer()
        vocabulary: dict[str, int] = {}
        blocks: list[sparse.csr_matrix] = []
        for start in range(0, len(corpus), COUNT_BLOCK):
            rows = [[vocabulary.setdefault(term, len(vocabulary)) for term in analyze(text)]
                    for text in corpus[start : start + COUNT_BLOCK]]
            blocks.append(_occurrences(rows))
        if not vocabulary:
            return None
        counts = _stack(blocks, len(vocabulary))
        terms = list(vocabulary)
        limit = self.counter.max_features
        if limit is not None and len(terms) > limit:
            frequency = np.bincount(counts.indices, weights=counts.data, minlength=len(terms))
            keep = np.sort(np.argsort(-frequency, kind="stable")[:limit])
            counts = counts[:, keep].tocsr()
            terms = [terms[j] for j in keep]
            vocabulary = {t: j for j, t in enumerate(terms)}
        counts.sort_indices()
        self.counter.vocabulary_ = vocabulary
        self.counter.fixed_vocabulary_ = False
        return counts

    def _analyzer(self) -> Callable[[str], list[str]]:
        """The counter's analyser for the settings of `__init__` (lower case, token pattern,
        stop words, then words and two-word phrases of the remaining words, as scikit-learn's;
        tested equal), written out so that a text costs one regex scan and two list
        comprehensions."""
        c = self.counter
        find = re.compile(c.token_pattern).findall
        stop = frozenset(c.get_stop_words() or ())

        def analyze(text: str) -> list[str]:
            tokens = [w for w in find(text.lower()) if w not in stop]
            return tokens + [f"{a} {b}" for a, b in zip(tokens, tokens[1:])]

        return analyze

    def weigh(self, counts: sparse.spmatrix) -> sparse.csr_matrix:
        """Counts to L2-normalised TF-IDF rows (an all-zero row stays zero)."""
        m = sparse.csr_matrix(counts, dtype=np.float32, copy=True)
        if m.shape[0] == 0:
            return m
        m.data = 1.0 + np.log(m.data)
        m = m @ sparse.diags(self.idf)
        out = normalize(m).tocsr()
        out.sum_duplicates()  # sorted, unique column indices per row: shared_terms relies on it
        return out

    def combine(self, counts: sparse.csr_matrix, groups: Sequence[Sequence[int]]) -> sparse.csr_matrix:
        """TF-IDF rows of groups of texts, each group weighted as one concatenated text."""
        rows = [i for i, g in enumerate(groups) for _ in g]
        cols = [j for g in groups for j in g]
        membership = sparse.csr_matrix(
            (np.ones(len(cols), dtype=np.float32), (rows, cols)),
            shape=(len(groups), counts.shape[0]),
        )
        return self.weigh(membership @ counts)

    @property
    def terms(self) -> np.ndarray:
        # built once per fit: scikit-learn rebuilds the whole vocabulary list on every call,
        # which made explaining 300,000 matches take minutes
        if self._terms is None:
            self._terms = self.counter.get_feature_names_out()
        return self._terms

    @property
    def term_list(self) -> list[str]:
        """`terms` as Python strings: indexing a list is far cheaper than a NumPy string array
        when explaining hundreds of thousands of matches one term at a time."""
        if self._term_list is None or len(self._term_list) != len(self.terms):
            self._term_list = self.terms.tolist()
        return self._term_list


def cosine(profiles: sparse.csr_matrix, calls: sparse.csr_matrix) -> np.ndarray:
    """Dense (n_profiles, n_calls) cosine similarities of L2-normalised TF-IDF rows."""
    return np.asarray((profiles @ calls.T).toarray(), dtype=np.float32)


def shared_terms(
    index: LexicalIndex, profile_row: sparse.csr_matrix, call_row: sparse.csr_matrix, k: int = 4
) -> list[str]:
    """The k terms contributing most to a profile/call similarity, best first.

    A two-word phrase hides its single words, so 'digital twin' is not followed by 'twin'.
    """
    return shared_terms_of_rows(index, sparse.csr_matrix(profile_row), 0, sparse.csr_matrix(call_row), 0, k)


def shared_terms_of_rows(
    index: LexicalIndex, profiles: sparse.csr_matrix, i: int, calls: sparse.csr_matrix, j: int,
    k: int = 4,
) -> list[str]:
    """`shared_terms` of row i of `profiles` and row j of `calls`, read straight from the CSR
    arrays (slicing a row out of a scipy matrix costs more than the whole computation, and an
    explained run does this for every match)."""
    a = slice(profiles.indptr[i], profiles.indptr[i + 1])
    b = slice(calls.indptr[j], calls.indptr[j + 1])
    p_terms, c_terms = profiles.indices[a], calls.indices[b]
    if len(p_terms) == 0 or len(c_terms) == 0:
        return []
    # rows from `weigh` have sorted, unique column indices: a binary search per call term is
    # several times cheaper than np.intersect1d on rows this short
    pos = np.minimum(np.searchsorted(p_terms, c_terms), len(p_terms) - 1)
    ib = np.flatnonzero(p_terms[pos] == c_terms)
    if len(ib) == 0:
        return []
    common = c_terms[ib]
    weights = profiles.data[a][pos[ib]] * calls.data[b][ib]
    order = np.argsort(-weights, kind="stable")
    return _pick_terms(index.term_list, common[order].tolist(), weights[order].tolist(), k)


PAIR_BATCH_ENTRIES = 2_000_000


def _occurrences(rows: list[list[int]]) -> sparse.csr_matrix:
    """Term ids per text (one per occurrence) as a CSR matrix of counts; columns up to the
    largest id seen (the caller widens it to the whole vocabulary)."""
    indptr = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum([len(r) for r in rows], out=indptr[1:])
    indices = np.fromiter(chain.from_iterable(rows), dtype=np.int64, count=int(indptr[-1]))
    width = int(indices.max()) + 1 if len(indices) else 0
    counts = sparse.csr_matrix(
        (np.ones(len(indices), dtype=np.float32), indices, indptr), shape=(len(rows), width)
    )
    counts.sum_duplicates()
    return counts


def _stack(blocks: list[sparse.csr_matrix], width: int) -> sparse.csr_matrix:
    """Blocks of `_occurrences` widened to the whole vocabulary, one below the other."""
    if not blocks:
        return sparse.csr_matrix((0, width), dtype=np.float32)
    counts = sparse.vstack(
        [sparse.csr_matrix((b.data, b.indices, b.indptr), shape=(b.shape[0], width))
         for b in blocks],
        format="csr",
    )
    counts.sort_indices()
    return counts


def shared_terms_of_pairs(
    index: LexicalIndex,
    profiles: sparse.csr_matrix,
    profile_rows: np.ndarray,
    calls: sparse.csr_matrix,
    call_rows: np.ndarray,
    k: int = 4,
) -> list[list[str]]:
    """`shared_terms_of_rows` for many (profile row, call row) pairs at once: one elementwise
    sparse product and one sort instead of a few NumPy calls per pair."""
    if len(profile_rows) == 0:
        return []
    # each pair copies its profile row: big profiles are taken a few pairs at a time
    sizes = np.diff(profiles.indptr)[profile_rows]
    if len(profile_rows) > 1 and sizes.sum() > PAIR_BATCH_ENTRIES:
        out: list[list[str]] = []
        start = 0
        while start < len(profile_rows):
            end = start + 1 + int(np.searchsorted(
                np.cumsum(sizes[start + 1 :]), PAIR_BATCH_ENTRIES - sizes[start], side="right"
            ))
            out.extend(shared_terms_of_pairs(
                index, profiles, profile_rows[start:end], calls, call_rows[start:end], k
            ))
            start = end
        return out
    product = sparse.csr_matrix(profiles[profile_rows].multiply(calls[call_rows]))
    product.eliminate_zeros()
    row_of = np.repeat(np.arange(product.shape[0]), np.diff(product.indptr))
    # within each pair: heaviest first, equal weights in term order (as the one-pair version)
    order = np.lexsort((product.indices, -product.data, row_of))
    terms, weights = product.indices[order], product.data[order]
    names = index.term_list
    # Python lists sliced per pair: NumPy slices and conversions per pair cost more
    term_ids, term_weights, bounds = terms.tolist(), weights.tolist(), product.indptr.tolist()
    out = []
    # the best 3k terms nearly always hold the k to show (a phrase hides at most its two
    # words); the rest of the pair is read only when they do not
    window = 3 * k
    for start, end in zip(bounds[:-1], bounds[1:], strict=True):
        cut = min(end, start + window)
        chosen = _pick_terms(names, term_ids[start:cut], term_weights[start:cut], k)
        if len(chosen) < k and cut < end:
            chosen = _pick_terms(names, term_ids[start:end], term_weights[start:end], k)
        out.append(chosen)
    return out


def _pick_terms(
    names: Sequence[str], terms: Sequence[int], weights: Sequence[float], k: int
) -> list[str]:
    """The first k of `terms` (best first), where a two-word phrase hides its single words:
    a word is skipped once a chosen phrase contains it, a phrase once one of its words was
    chosen on its own."""
    chosen: list[str] = []
    phrase_words: set[str] = set()  # every word of every chosen term
    singles: set[str] = set()  # chosen one-word terms
    for t, w in zip(terms, weights, strict=True):
        if w <= 0:
            break
        term = names[t]
        if term in phrase_words:
            continue
        words = term.split()
        if len(words) > 1 and not singles.isdisjoint(words):
            continue
        chosen.append(term)
        phrase_words.update(words)
        if len(words) == 1:
            singles.add(term)
        if len(chosen) == k:
            break
    return chosen
