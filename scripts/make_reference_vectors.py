#!/usr/bin/env python3
"""Reference vectors and throughput of sentence-transformers' all-MiniLM-L6-v2.

Writes providers/tests/data/reference_vectors.json: a few fixed sentences and
the vectors that sentence-transformers itself computes for them from the same
model folder the Rust crate loads (the local provider must match them), then
times sentence-transformers' own encode() on 1,000 generated ~350-character
reviews (the same generator as providers::embed::review_like_texts) so the Rust
throughput has a figure measured on the same machine to compare with.

Needs: pip install sentence-transformers torch   (CPU is enough)

    python3 scripts/make_reference_vectors.py [--model-dir DIR] [--threads 2]
        [--bench-n 1000] [--no-bench] [--out providers/tests/data/reference_vectors.json]
"""

import argparse
import json
import os
import pathlib
import platform
import sys
import time

SENTENCES = [
    "The battery lasts for two full days of heavy use.",
    "This screen is too dim to read outside in the sun.",
    "Great value for the money, I would buy it again!",
    # non-ASCII: accents, German, CJK, an emoji
    "Très bon produit, livraison rapide — größer als erwartet. 非常好用 👍",
    "",  # an empty text: only [CLS] [SEP]
    # longer than 256 tokens: must be truncated exactly as sentence-transformers does
    " ".join(
        f"Review part {i}: the blender's motor is strong, the jug is easy to clean, "
        f"but the lid rattles at high speed and the cord is rather short."
        for i in range(1, 16)
    ),
]

OPENERS = [
    "I bought this for my daughter and",
    "After three weeks of daily use,",
    "Honestly I was sceptical at first, but",
    "We ordered two of these and",
    "Compared to the previous model,",
    "The delivery was quick and",
    "For the price,",
    "My husband uses it every morning and",
]
SUBJECTS = [
    "the battery easily lasts two full days",
    "the screen is bright and sharp even outdoors",
    "the fabric feels soft and has not pilled after washing",
    "the zipper broke after a couple of weeks",
    "the sound quality is clear with surprisingly deep bass",
    "the straps are comfortable on long hikes",
    "the app keeps disconnecting from the device",
    "the blender crushes ice without any trouble",
    "the sizing runs small so order one size up",
    "the lid does not seal properly and it leaks",
]
DETAILS = [
    "The packaging was minimal and recyclable, which I appreciate.",
    "Customer service answered my question within a day.",
    "Setup took less than five minutes with the included guide.",
    "It is a bit heavier than I expected but feels sturdy.",
    "The colour matches the photos on the product page exactly.",
    "Cleaning it is easy, everything goes in the dishwasher.",
    "I would like more colour options in the next version.",
    "It replaced two other gadgets on my kitchen counter.",
]
CLOSERS = [
    "Overall I would recommend it to friends.",
    "Four stars because of the small issues mentioned above.",
    "I will probably buy another one as a gift.",
    "Not perfect, but good value for the money.",
    "I returned it and bought a different brand instead.",
    "Five stars, exactly what I needed.",
]


def review_like_texts(n):
    """Same texts as providers::embed::review_like_texts (Rust), byte for byte."""
    out = []
    for i in range(n):
        s = "{} {}. {} {} {}".format(
            OPENERS[i % len(OPENERS)],
            SUBJECTS[(i // 3) % len(SUBJECTS)],
            DETAILS[(i // 7) % len(DETAILS)],
            DETAILS[(i // 11 + 3) % len(DETAILS)],
            CLOSERS[(i // 5) % len(CLOSERS)],
        )
        k = i
        while len(s) < 340:
            s += " " + DETAILS[k % len(DETAILS)]
            k = k // 2 + 5
        if len(s) > 360:
            cut = s[:360].rfind(" ")
            s = s[: cut if cut >= 0 else 360].rstrip(".,") + "."
        out.append(s)
    return out


def main():
    root = pathlib.Path(__file__).resolve().parent.parent
    default_dir = os.environ.get("EMBEDDING_MODEL_DIR") or os.path.join(
        os.path.expanduser("~"), ".cache/agenticshop/all-MiniLM-L6-v2"
    )
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-dir", default=default_dir)
    ap.add_argument("--out", default=str(root / "providers/tests/data/reference_vectors.json"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--bench-n", type=int, default=1000)
    ap.add_argument("--batch-size", type=int, default=32, help="sentence-transformers' encode() default")
    ap.add_argument("--no-bench", action="store_true")
    args = ap.parse_args()

    if not os.path.isfile(os.path.join(args.model_dir, "model.safetensors")):
        sys.exit(f"no model at {args.model_dir}: run scripts/services.sh first (or pass --model-dir)")

    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(args.threads)
    model = SentenceTransformer(args.model_dir, device="cpu")
    print(f"model {args.model_dir}: max_seq_length={model.max_seq_length}, "
          f"dims={model.get_sentence_embedding_dimension()}")

    tok = model.tokenizer
    token_counts = [len(tok(s)["input_ids"]) for s in SENTENCES]
    vectors = model.encode(SENTENCES, batch_size=32, convert_to_numpy=True, normalize_embeddings=False)
    doc = {
        "model": "sentence-transformers/all-MiniLM-L6-v2",
        "made_by": "scripts/make_reference_vectors.py",
        "sentence_transformers": __import__("sentence_transformers").__version__,
        "torch": torch.__version__,
        "max_seq_length": model.max_seq_length,
        "items": [
            {
                "text": s,
                "tokens_untruncated": n,
                "vector": [float(f"{x:.7g}") for x in v.tolist()],
            }
            for s, n, v in zip(SENTENCES, token_counts, vectors)
        ],
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {args.out}: {len(SENTENCES)} vectors, tokens per sentence {token_counts}")

    if args.no_bench:
        return
    texts = review_like_texts(args.bench_n)
    avg_chars = sum(len(t) for t in texts) / len(texts)
    avg_tokens = sum(len(tok(t)["input_ids"]) for t in texts) / len(texts)
    model.encode(texts[:64], batch_size=args.batch_size)  # warm-up
    c0 = time.process_time()
    t0 = time.perf_counter()
    model.encode(texts, batch_size=args.batch_size, convert_to_numpy=True)
    dt = time.perf_counter() - t0
    cpu = time.process_time() - c0
    print(
        f"sentence-transformers {doc['sentence_transformers']} on torch {torch.__version__} CPU "
        f"({platform.processor() or platform.machine()}), torch threads={torch.get_num_threads()}, "
        f"batch={args.batch_size}: {len(texts)} texts (avg {avg_chars:.0f} chars, {avg_tokens:.1f} tokens) "
        f"in {dt:.2f} s = {len(texts) / dt:.1f} texts/s "
        f"(CPU {cpu:.2f} s, {len(texts) * torch.get_num_threads() / cpu:.1f} texts/s CPU-normalised)"
    )


if __name__ == "__main__":
    main()
