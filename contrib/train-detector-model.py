#!/usr/bin/env python3
"""Train the detector model (src/detect/model.tsv) from the labelled set.

    cargo run --release --example detector_features > /tmp/features.jsonl
    python3 contrib/train-detector-model.py /tmp/features.jsonl src/detect/model.tsv

Needs scikit-learn (pip install scikit-learn). Trains on the tuned part
only (never on heldout/): six logistic regressions (the flag, then phone,
email, address, messaging, payment), each over every feature seen in at
least two messages, a message's features worth 1/sqrt(n) each. Prints what
the combination of rules and model would score with the shipped
thresholds, estimated by leaving each batch of the tuned part out in turn
(trained on the others), and on the held-out part (trained on the whole
tuned part). These estimates read every message whole; the detector reads a text
longer than 250 bytes in windows (src/detect/model.rs), so the figures that
count are the quality test's.
"""

import json
import re
import sys
from collections import Counter

import numpy as np
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression

CATS = ["phone", "email", "address", "messaging", "payment"]
C = 30.0  # inverse regularisation; chosen by the leave-a-batch-out figures
MIN_DF = 2
# The shipped [detector.model] thresholds (src/detect/model.rs).
MIN_FLAG, MIN_KEEP, MIN_ALONE = 0.5, 0.05, 0.8
DECIMALS = 4


def batch(file):
    """The batch a tuned file belongs to: heldout_vN_*, cuesN_*, or the
    first files."""
    m = re.match(r"(heldout_v\d+|cues\d*)_", file)
    return m.group(1) if m else "first"


def vocabulary(rows):
    df = Counter(f for r in rows for f in r["features"])
    return {f: i for i, f in enumerate(sorted(f for f, n in df.items() if n >= MIN_DF))}


def matrix(rows, vocab):
    ind, ptr, dat = [], [0], []
    for r in rows:
        ids = [vocab[f] for f in r["features"] if f in vocab]
        w = 1 / np.sqrt(len(ids)) if ids else 0.0
        ind += ids
        dat += [w] * len(ids)
        ptr.append(len(ind))
    return sp.csr_matrix((dat, ind, ptr), shape=(len(rows), len(vocab)))


def labels(rows):
    y = np.array([[c in r["expect"] for c in CATS] for r in rows])
    return np.column_stack([y.any(axis=1), y])


def fit(rows):
    vocab = vocabulary(rows)
    x = matrix(rows, vocab)
    y = labels(rows)
    models = []
    for k in range(1 + len(CATS)):
        m = LogisticRegression(C=C, max_iter=5000, class_weight="balanced")
        m.fit(x, y[:, k])
        models.append(m)
    return vocab, models


def predict(vocab, models, rows):
    x = matrix(rows, vocab)
    return np.column_stack([m.predict_proba(x)[:, 1] for m in models])


def combine(p, rows):
    """Categories found: a rule's hit kept when its category's probability
    reaches MIN_KEEP, the model alone at MIN_ALONE; nothing below MIN_FLAG."""
    rules = np.array([[c in r["rules"] for c in CATS] for r in rows])
    cat = p[:, 1:]
    found = (rules & (cat >= MIN_KEEP)) | (cat >= MIN_ALONE)
    return found & (p[:, :1] >= MIN_FLAG)


def report(name, found, rows):
    y = labels(rows)[:, 1:]
    hard = np.array([r["hard"] for r in rows])
    flag, want = found.any(axis=1), y.any(axis=1)

    def pr(tp, fp, fn):
        return f"P {tp / max(1, tp + fp):.3f} R {tp / max(1, tp + fn):.3f}"

    print(
        f"{name}: {len(rows)} messages; categories "
        + pr((found & y).sum(), (found & ~y).sum(), (~found & y).sum())
        + "; flag "
        + pr((flag & want).sum(), (flag & ~want).sum(), (~flag & want).sum())
        + f"; hard negatives flagged {(flag & hard).sum()}/{hard.sum()}"
    )


def main():
    src, out = sys.argv[1], sys.argv[2]
    rows = [json.loads(line) for line in open(src, encoding="utf-8")]
    tuned = [r for r in rows if r["part"] == "tuned"]
    held = [r for r in rows if r["part"] != "tuned"]

    groups = [batch(r["file"]) for r in tuned]
    p = np.zeros((len(tuned), 1 + len(CATS)))
    for g in sorted(set(groups)):
        inside = [i for i, x in enumerate(groups) if x != g]
        outside = [i for i, x in enumerate(groups) if x == g]
        vocab, models = fit([tuned[i] for i in inside])
        p[outside] = predict(vocab, models, [tuned[i] for i in outside])
    report("tuned part, each batch left out in turn", combine(p, tuned), tuned)
    rules = np.array([[c in r["rules"] for c in CATS] for r in tuned])
    report("tuned part, rules alone", rules, tuned)

    vocab, models = fit(tuned)
    if held:
        report("held-out part", combine(predict(vocab, models, held), held), held)
        rules = np.array([[c in r["rules"] for c in CATS] for r in held])
        report("held-out part, rules alone", rules, held)

    weights = np.column_stack([m.coef_[0] for m in models])
    bias = [m.intercept_[0] for m in models]
    kept = 0
    with open(out, "w", encoding="utf-8") as f:
        f.write("# postdesk detector model: made by contrib/train-detector-model.py\n")
        f.write(f"# from {len(tuned)} messages of the labelled set's tuned part.\n")
        f.write("# Columns: feature, then weights for flag, " + ", ".join(CATS) + ".\n")
        f.write("bias\t" + "\t".join(f"{b:.{DECIMALS}f}" for b in bias) + "\n")
        # Every feature of the vocabulary is written, zeros included: the
        # scan counts it in a message's 1/sqrt(n).
        for feat, i in sorted(vocab.items()):
            w = np.round(weights[i], DECIMALS)
            kept += 1
            f.write(feat + "\t" + "\t".join(f"{x:g}" for x in w) + "\n")
    print(f"wrote {out}: {kept} features")


if __name__ == "__main__":
    main()
