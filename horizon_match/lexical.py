"""Lexical similarity: TF-IDF over words and two-word phrases, so exact technical terms count.

The vocabulary and IDF are fitted on the texts of one matching run (calls and profiles), then
each member profile (all its texts together) is compared with each call by cosine similarity.
`shared_terms` gives the highest-weighted terms a member and a call have in common, for the
explanation line.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer

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
    """TF-IDF vectors of calls and profiles fitted on one corpus."""

    def __init__(self, *, min_df: int = 1, max_features: int | None = 200_000) -> None:
        self.vectorizer = TfidfVectorizer(
            lowercase=True,
            stop_words=sorted(STOP_WORDS),
            token_pattern=_TOKEN_PATTERN,
            ngram_range=(1, 2),
            sublinear_tf=True,
            min_df=min_df,
            max_features=max_features,
            dtype=np.float32,
        )
        self._fitted = False

    def fit(self, texts: Sequence[str]) -> LexicalIndex:
        corpus = [t for t in texts if t and t.strip()]
        if not corpus:
            corpus = ["empty"]
        try:
            self.vectorizer.fit(corpus)
        except ValueError:
            # only stop words in the whole corpus: fall back to a vocabulary of one dummy word
            self.vectorizer.set_params(stop_words=None)
            self.vectorizer.fit(corpus + ["empty"])
        self._fitted = True
        return self

    def transform(self, texts: Sequence[str]) -> sparse.csr_matrix:
        if not texts:
            return sparse.csr_matrix((0, len(self.vectorizer.vocabulary_)), dtype=np.float32)
        return self.vectorizer.transform(list(texts)).tocsr()

    @property
    def terms(self) -> np.ndarray:
        return self.vectorizer.get_feature_names_out()


def cosine(profiles: sparse.csr_matrix, calls: sparse.csr_matrix) -> np.ndarray:
    """Dense (n_profiles, n_calls) cosine similarities of L2-normalised TF-IDF rows."""
    return np.asarray((profiles @ calls.T).toarray(), dtype=np.float32)


def shared_terms(
    index: LexicalIndex, profile_row: sparse.csr_matrix, call_row: sparse.csr_matrix, k: int = 4
) -> list[str]:
    """The k terms contributing most to a profile/call similarity, best first.

    A two-word phrase hides its single words, so 'digital twin' is not followed by 'twin'.
    """
    product = profile_row.multiply(call_row).tocsr()
    if product.nnz == 0:
        return []
    order = np.argsort(-product.data)
    names = index.terms
    chosen: list[str] = []
    for idx in order:
        term = str(names[product.indices[idx]])
        if any(term in other.split() or other in term.split() for other in chosen):
            continue
        if any(word in chosen for word in term.split()):
            chosen = [c for c in chosen if c not in term.split()]
        chosen.append(term)
        if len(chosen) == k:
            break
    return chosen
