"""Lexical similarity: TF-IDF over words and two-word phrases, so exact technical terms count.

The vocabulary is learned from the calls of one matching run (only a term some call uses can
be shared with a call) and IDF from all its texts (calls and profile texts); then each member
profile (all its texts together) is compared with each call by cosine. A profile's vector is
thus normalised over the terms calls use: its words no call uses do not dilute it, so a broad
profile with one relevant term scores higher than it would against its whole vocabulary. For
a whole profile the order of its calls is the same either way (only per-text values inside
it change); the learned ranker was trained on the values as they are now (held-out quality
unchanged, BENCHMARKS.md).
`shared_terms` gives the highest-weighted terms a member and a call have in common, for the
explanation line.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from itertools import chain

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
_TOKEN_PATTERN = r"(?u)\b[^\W\d_][\w\-]*[^\W_]\b|\b[^\W\d_]{2,}\b"


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

    def fit_counts(self, texts: Sequence[str], learn_from: int | None = None) -> sparse.csr_matrix:
        """Learn vocabulary and IDF from `texts`; returns their term counts.

        With `learn_from` = n, the vocabulary comes from the first n texts only (the calls) and
        the others are counted against it: a term no call uses can never be shared with a
        call, and leaving the profiles' own vocabulary out keeps 30,000 profiles' millions of
        word pairs out of memory. IDF is still counted over every text."""
        corpus = [t or "" for t in texts]
        learn = len(corpus) if learn_from is None else max(0, min(learn_from, len(corpus)))
        counts = self._count_new_vocabulary(corpus, learn)
        if counts is None:
            # nothing but stop words where the vocabulary comes from: a one-word vocabulary
            self.counter.set_params(stop_words=None, token_pattern=r"(?u)\S+")
            counts = self._count_new_vocabulary(["empty", *corpus], 1 + learn)
            assert counts is not None
            counts = counts[1:]
        self._terms = None
        self._term_list = None
        df = np.bincount(counts.indices, minlength=counts.shape[1])
        n = counts.shape[0]
        self.idf = (np.log((1.0 + n) / (1.0 + df)) + 1.0).astype(np.float32)
        return counts

    def _count_new_vocabulary(self, corpus: list[str], learn: int) -> sparse.csr_matrix | None:
        """CountVectorizer.fit_transform without its alphabetical sort of the vocabulary (the
        slowest part for 30,000 profiles; term order does not matter to cosines), learning
        terms from the first `learn` texts only. Terms are numbered in order of first
        appearance; above max_features the most frequent are kept, ties going to the earlier
        term. None when no term was learned."""
        analyze = self._analyzer()
        vocabulary: dict[str, int] = {}
        blocks: list[sparse.csr_matrix] = []
        # texts are counted in blocks: each block lists one entry per occurrence of a known
        # term (cheaper in Python than counting per text) and sums the duplicates in C before
        # the next block, so the raw occurrences of 30,000 profiles never sit in memory at once
        start = 0
        while start < learn:
            end = min(learn, start + COUNT_BLOCK)
            rows = [[vocabulary.setdefault(term, len(vocabulary)) for term in analyze(text)]
                    for text in corpus[start:end]]
            blocks.append(_occurrences(rows))
            start = end
        if not vocabulary:
            return None
        get = vocabulary.get
        known_words = self._words_of(vocabulary)
        while start < len(corpus):
            end = min(len(corpus), start + COUNT_BLOCK)
            rows = [[j for j in map(get, analyze(text, known_words)) if j is not None]
                    for text in corpus[start:end]]
            blocks.append(_occurrences(rows))
            start = end
        counts = sparse.vstack(
            [sparse.csr_matrix((b.data, b.indices, b.indptr), shape=(b.shape[0], len(vocabulary)))
             for b in blocks],
            format="csr",
        )
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

    def _analyzer(self) -> Callable[..., list[str]]:
        """The counter's analyser (lower case, token pattern, stop words, then words and
        two-word phrases of the remaining words, as scikit-learn's), written out so that a
        text costs one regex scan and two list comprehensions: 30,000 profiles' texts go
        through it. The scikit-learn one is used when its settings differ from these."""
        c = self.counter
        if not (c.analyzer == "word" and c.ngram_range == (1, 2) and c.lowercase
                and c.preprocessor is None and c.tokenizer is None and c.strip_accents is None
                and c.input == "content" and c.token_pattern is not None):
            base = c.build_analyzer()
            return lambda text, known=None: base(text)
        find = re.compile(c.token_pattern).findall
        stop = frozenset(c.get_stop_words() or ())

        def analyze(text: str, known: frozenset[str] | None = None) -> list[str]:
            tokens = [w for w in find(text.lower()) if w not in stop]
            if known is None:
                return tokens + [f"{a} {b}" for a, b in zip(tokens, tokens[1:])]
            # against a fixed vocabulary, a phrase with an unknown word cannot be in it: skip
            # building it (most phrases of a profile are never used by a call)
            return tokens + [f"{a} {b}" for a, b in zip(tokens, tokens[1:])
                             if a in known and b in known]

        return analyze

    @staticmethod
    def _words_of(vocabulary: dict[str, int]) -> frozenset[str]:
        return frozenset(w for term in vocabulary for w in term.split())

    def counts(self, texts: Sequence[str]) -> sparse.csr_matrix:
        if not texts:
            return sparse.csr_matrix((0, len(self.idf)), dtype=np.float32)
        return self.counter.transform(list(texts)).tocsr().astype(np.float32)

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
    return [
        _pick_terms(names, term_ids[start:end], term_weights[start:end], k)
        for start, end in zip(bounds[:-1], bounds[1:], strict=True)
    ]


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
