"""Held-out task A quality if the lexical IDF came from the calls only.

    python benchmarks/idf_from_calls.py [--db sqlite:///data/bench/eval.db] [--folds 5]

Historical: since 2026-12-04 (commit after d80e686) the IDF comes from the calls only in the
shipped code (`LexicalIndex.fit`), and the matcher no longer calls the method this script
patches, so today it prints the shipped held-out numbers. The comparison it was written for
is re-run from the commit that added it: `git worktree add ../hm-d03053e d03053e`, then this
script with `PYTHONPATH=../hm-d03053e`.

Today the TF-IDF weights count every text of a run (calls and every profile text), so no
profile can be scored before all profiles are tokenised, and a member's scores move a little
when another member joins. Counting document frequencies over the calls only would let
profiles be prepared chunk by chunk while earlier chunks are scored (the route to matching
30,000 profiles in 30 s, BENCHMARKS.md). This measures what that does to quality: the same
command as `horizon-match evaluate cordis DIR --task a --folds N`, with the IDF of
`LexicalIndex.fit_counts` taken from the vocabulary's texts (the calls) only. The shipped code
is not changed; the matcher is re-trained per fold as in the held-out evaluation.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from horizon_match import lexical
from horizon_match.config import load_settings
from horizon_match.db import Database
from horizon_match.evaluation import evaluate_cordis

ROOT = Path(__file__).resolve().parent.parent


def _calls_only_idf() -> None:
    if not hasattr(lexical.LexicalIndex, "fit_counts"):
        raise SystemExit("this comparison runs against the package of commit d03053e, where the IDF "
                         "still counted every text: see the docstring")
    fit = lexical.LexicalIndex.fit_counts

    def fit_counts(self, texts, learn_from=None):  # type: ignore[no-untyped-def]
        counts = fit(self, texts, learn_from=learn_from)
        if learn_from:
            calls = counts[:learn_from]
            df = np.bincount(calls.indices, minlength=calls.shape[1])
            self.idf = (np.log((1.0 + calls.shape[0]) / (1.0 + df)) + 1.0).astype(np.float32)
        return counts

    lexical.LexicalIndex.fit_counts = fit_counts  # type: ignore[method-assign]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--folder", type=Path, default=ROOT.parent / "shared" / "data" / "cordis_dev")
    ap.add_argument("--db", default=f"sqlite:///{ROOT / 'data' / 'bench' / 'eval.db'}")
    ap.add_argument("--folds", type=int, default=5)
    args = ap.parse_args()
    _calls_only_idf()
    db = Database(args.db)
    report = evaluate_cordis(db, load_settings({}, db=args.db), args.folder, task="a",
                             folds=args.folds)
    print(report.table())
    print(json.dumps({"idf": "calls only", "folds": args.folds}))


if __name__ == "__main__":
    main()
