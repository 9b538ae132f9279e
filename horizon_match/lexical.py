"""Lexical similarity: TF-IDF over words and two-word phrases, so exact technical terms count.

The vocabulary and IDF are fitted on the texts of one matching run (calls and profile texts),
then each member profile (all its texts together) is compared with each call by cosine.
`shared_terms` gives the highest-weighted terms a member and a call have in common, for the
explanation line.
"""

from __future__ import annotations

from collections.abc import Sequence

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

    def fit_counts(self, texts: Sequence[str]) -> sparse.csr_matrix:
        """Learn vocabulary and IDF from `texts`; returns their term counts."""
        corpus = [t or "" for t in texts]
        try:
            counts = self.counter.fit_transform(corpus)
        except ValueError:
            # nothing but stop words in the whole corpus: a one-word vocabulary
            self.counter.set_params(stop_words=None, token_pattern=r"(?u)\S+")
            counts = self.counter.fit_transform([*corpus, "empty"])[: len(corpus)]
        counts = counts.tocsr()
        self._terms = None
        df = np.bincount(counts.indices, minlength=counts.shape[1])
        n = counts.shape[0]
        self.idf = (np.log((1.0 + n) / (1.0 + df)) + 1.0).astype(np.float32)
        return counts

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
        out.sum_duplicates()  # unique column indices per row, which shared_terms relies on
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
    common, ia, ib = np.intersect1d(
        profiles.indices[a], calls.indices[b], assume_unique=True, return_indices=True
    )
    if len(common) == 0:
        return []
    weights = profiles.data[a][ia] * calls.data[b][ib]
    order = np.argsort(-weights, kind="stable")
    names = index.terms
    chosen: list[str] = []
    for idx in order:
        if weights[idx] <= 0:
            break
        term = str(names[common[idx]])
        if any(term in other.split() or other in term.split() for other in chosen):
            continue
        if any(word in chosen for word in term.split()):
            chosen = [c for c in chosen if c not in term.split()]
        chosen.append(term)
        if len(chosen) == k:
            break
    return chosen
