"""Would fine-tuning the shipped model on CORDIS outcomes help task A? (about 8 min per fold with 1 epoch)

    python benchmarks/finetune_probe.py [--fold 0] [--epochs 1] [--lr 5e-6] [--save DIR]

A probe, not the matcher: it measures only the plain dense signal (a profile's score for a
topic = the mean cosine of its projects' title + objective with the topic's title, destination
and call title), before and after fine-tuning, on the no-overlap queries whose target topic is
in one of the 5 folds of `evaluate cordis --folds 5` (`--fold`).

Fine-tuning: all-MiniLM-L6-v2 (the shipped package), every weight, contrastive with in-batch
negatives (a project's text must be nearer its own topic's header than the other headers of
the batch; a header met twice in a batch is not a negative), batches of 32, AdamW. Texts are
cut at 128 tokens, in training and in the probe's own measure (both models). Training pairs:
every dev project whose topic is a candidate topic outside the held-out fold, so no held-out
topic, nor any of its projects, is seen. Seeds fixed; one thread pool of 2.

`--save DIR` writes the fine-tuned model as a sentence-transformers folder, which the matcher
takes by path (HORIZON_MATCH_MODEL=DIR), e.g. to run `evaluate cordis` with it and read the
queries of the held-out fold only.

Needs PyTorch and sentence-transformers (installed with the package).
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

import numpy as np

from horizon_match.embedding import shipped_model_path
from horizon_match.evaluation import read_cordis_folder, topic_folds
from horizon_match.training import TrainingOptions

ROOT = Path(__file__).resolve().parent.parent
BATCH = 32
SCALE = 20.0  # the usual temperature of in-batch-negative losses for cosine similarities


def main() -> None:
    import torch
    from sentence_transformers import SentenceTransformer

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folder", type=Path, default=ROOT.parent / "shared" / "data" / "cordis_dev")
    parser.add_argument("--fold", type=int, default=0)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--lr", type=float, default=5e-6)
    parser.add_argument("--save", type=Path, help="write the fine-tuned model to this folder")
    args = parser.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(2)

    data = read_cordis_folder(args.folder, "a")
    fold_of = topic_folds(data.queries, args.folds, TrainingOptions().seed)
    held = {t for t, f in fold_of.items() if f == args.fold}
    candidates = [c for y in sorted({q.call_year for q in data.queries}) for c in data.candidates(y)]
    column = {c.topic: i for i, c in enumerate(candidates)}
    headers = [c.call_doc().header() for c in candidates]
    ids = sorted(data.projects)
    row = {p: i for i, p in enumerate(ids)}
    texts = [f"{data.projects[p].title}. {data.projects[p].summary[:1200]}" for p in ids]
    test = [q for q in data.queries
            if q.target_topic in held and q.target_topic in column and not data.overlaps(q)]
    pairs = [(texts[row[p]], headers[column[data.projects[p].topic]]) for p in ids
             if data.projects[p].topic in column and data.projects[p].topic not in held]
    print(f"fold {args.fold}: {len(test)} held-out no-overlap queries, {len(held)} held-out topics, "
          f"{len(pairs)} training pairs", flush=True)

    model = SentenceTransformer(str(shipped_model_path()), device="cpu")
    served_length = model.max_seq_length
    model.max_seq_length = 128  # training and this probe's measure; a saved model keeps the served length

    def evaluate(tag: str) -> None:
        start = time.perf_counter()
        model.eval()
        projects = model.encode(texts, batch_size=64, normalize_embeddings=True)
        topics = model.encode(headers, batch_size=64, normalize_embeddings=True)
        sims = projects @ topics.T
        ranks = []
        for q in test:
            scores = sims[[row[p] for p in q.profile_ids if p in row]].mean(0)
            ranks.append(1 + int((scores > scores[column[q.target_topic]]).sum()))
        r = np.asarray(ranks, dtype=np.float64)
        print(f"{tag}: MRR {np.mean(1 / r):.4f}  R@10 {np.mean(r <= 10):.4f}  "
              f"({time.perf_counter() - start:.0f} s to embed and rank)", flush=True)

    evaluate("shipped model")
    optimiser = torch.optim.AdamW(model.parameters(), lr=args.lr)
    rng = random.Random(0)
    for epoch in range(args.epochs):
        model.train()
        rng.shuffle(pairs)
        start, total = time.perf_counter(), 0.0
        for b in range(0, len(pairs), BATCH):
            batch = pairs[b : b + BATCH]
            left = model(model.preprocess([x for x, _ in batch]))["sentence_embedding"]
            right = model(model.preprocess([y for _, y in batch]))["sentence_embedding"]
            logits = torch.nn.functional.normalize(left, dim=-1) @ torch.nn.functional.normalize(right, dim=-1).T
            same = torch.tensor([[i != j and batch[i][1] == batch[j][1] for j in range(len(batch))]
                                 for i in range(len(batch))])
            loss = torch.nn.functional.cross_entropy(
                (logits * SCALE).masked_fill(same, -1e4), torch.arange(len(batch))
            )
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += loss.item() * len(batch)
        print(f"epoch {epoch + 1}: loss {total / len(pairs):.3f} ({time.perf_counter() - start:.0f} s)", flush=True)
        evaluate(f"fine-tuned, {epoch + 1} epoch(s)")
    if args.save:
        model.max_seq_length = served_length
        model.save(str(args.save))
        print(f"saved to {args.save}")


if __name__ == "__main__":
    main()
