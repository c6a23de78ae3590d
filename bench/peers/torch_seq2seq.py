#!/usr/bin/python3
"""PyTorch peer for the seq2seq benchmark: the fixture model (rebuilt from its seed by
tools/make_seq2seq_fixtures.py) decoded by the same shrinking-beam search, written with tensor
ops (topk) instead of the fixture script's slow reference sort, one request at a time, 1 thread.

Run:  env -u OPENBLAS_CORETYPE /usr/bin/python3 bench/peers/torch_seq2seq.py --beam 4 --requests 200 --clients 8

Batch 1: requests back to back, latency = decode time. Concurrent (--clients C > 1): a
single-threaded server has no cross-request batching, so C closed-loop clients queue FIFO
behind it; each request's latency is its wait plus its decode, simulated from the measured
decode times in arrival order. Prints one JSON line.
"""
import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tools"))
import make_seq2seq_fixtures as fx  # noqa: E402


def decode(enc, dec, source, beam, max_length, alpha):
    enc_out, state, mask = fx.encode(enc, [source])
    live_tokens = [[]]
    scores = torch.zeros(1, dtype=torch.float64)
    finished = []
    for _ in range(max_length):
        width = beam - len(finished)
        k = len(live_tokens)
        prev = torch.tensor([t[-1] if t else fx.START for t in live_tokens], dtype=torch.int64)
        log_probs, new_state = dec(prev, state, enc_out.expand(k, -1, -1), mask.expand(k, -1))
        total = (scores[:, None] + log_probs.double()).flatten()
        best, index = torch.topk(total, width)
        vocab = log_probs.shape[1]
        next_tokens, next_scores, parents = [], [], []
        for s, i in zip(best.tolist(), index.tolist()):
            parent, token = divmod(i, vocab)
            tokens = live_tokens[parent] + [token]
            if token == fx.END:
                finished.append((tokens, s, True))
            else:
                next_tokens.append(tokens)
                next_scores.append(s)
                parents.append(parent)
        if len(finished) >= beam or not next_tokens:
            break
        live_tokens = next_tokens
        scores = torch.tensor(next_scores, dtype=torch.float64)
        state = new_state[torch.tensor(parents)]
    else:
        finished.extend((t, s, False) for t, s in zip(live_tokens, scores.tolist()))
    finished.sort(key=lambda f: -(f[1] / fx.length_penalty(len(f[0]), alpha)))
    tokens, _, ended = finished[0]
    return tokens[:-1] if ended else tokens, len(tokens)


def percentile(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100.0 * (len(s) - 1))))]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--beam", type=int, default=4)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--clients", type=int, default=1)
    parser.add_argument("--alpha", type=float, default=0.6)
    args = parser.parse_args()
    torch.set_num_threads(1)
    here = os.path.dirname(os.path.abspath(__file__))
    reference = json.load(open(os.path.join(here, "..", "..", "tests", "fixtures", "seq2seq", "toy", "1", "reference.json")))
    sources = [c["source"] for c in reference["cases"]]
    enc, dec = fx.build_model()
    with torch.inference_mode():
        # The peer must decode what the reference decodes: check the fixture cases first.
        for c in reference["cases"]:
            ids, _ = decode(enc, dec, c["source"], c["beam"], c["max_length"], c["length_penalty"])
            assert ids == c["hypotheses"][0]["ids"], f"peer differs from the reference on {c['source']}"
        for s in sources:
            decode(enc, dec, s, args.beam, fx.MAX_LENGTH, args.alpha)  # warm-up
        service, tokens = [], 0
        start = time.perf_counter()
        for r in range(args.requests):
            t0 = time.perf_counter()
            _, n = decode(enc, dec, sources[r % len(sources)], args.beam, fx.MAX_LENGTH, args.alpha)
            service.append(time.perf_counter() - t0)
            tokens += n
        wall = time.perf_counter() - start
    # Closed loop: C clients each send their next request when the previous answers; one server
    # thread serves FIFO. Completion of request r = max(its issue, previous completion) + service.
    latencies, issue, free_at = [], [0.0] * args.clients, 0.0
    queue = list(range(args.clients))
    for r in range(args.requests):
        client = queue.pop(0)
        begin = max(issue[client], free_at)
        free_at = begin + service[r]
        latencies.append(free_at - issue[client])
        issue[client] = free_at
        queue.append(client)
    print(json.dumps({
        "impl": "pytorch", "beam": args.beam, "clients": args.clients, "requests": args.requests,
        "tokens": tokens, "tokens_per_s": tokens / wall,
        "p50_ms": percentile(latencies, 50) * 1e3, "p99_ms": percentile(latencies, 99) * 1e3,
    }))


if __name__ == "__main__":
    main()
