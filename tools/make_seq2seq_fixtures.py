#!/usr/bin/python3
"""Builds the seq2seq test model: a GRU encoder-decoder with attention (random init, fixed seed),
exported to ONNX as an encoder graph and a decoder-step graph, plus PyTorch reference decodes.

Run:  /usr/bin/python3 tools/make_seq2seq_fixtures.py [--out tests/fixtures/seq2seq/toy/1]

Graph contract (what src/OnnxModels/Seq2Seq checks when it loads a kind "seq2seq" model):

encoder.onnx
  inputs   src_ids      int64   [B, S]     source token ids, right-padded with pad_id
           src_lengths  int64   [B]        real length of each row, 1 <= length <= S
  outputs  enc_out      float32 [B, S, H]  one vector per source position; rows past a
                                           row's length are undefined (masked by the decoder)
           state        float32 [B, D]     the decoder's initial recurrent state

decoder.onnx  (one decoding step for B hypotheses at once)
  inputs   prev_token   int64   [B]        the previous output token (start_id at step 0)
           state        float32 [B, D]     recurrent state after the previous step
           enc_out      float32 [B, S, H]  the source encoding of each hypothesis' request
           src_mask     float32 [B, S]     1 for a real source position, 0 for padding
  outputs  log_probs    float32 [B, V]     log-softmax over the vocabulary for the next token
           new_state    float32 [B, D]     state to feed the next step

B and S are dynamic axes; H, D and V are fixed by the graph. The state is opaque to the runtime:
one float vector per hypothesis that beam search copies from parent to child hypotheses (here
D = H, the GRU hidden state; an LSTM would pack [h; c] into D = 2H). Masked positions get -1e9
before the attention softmax, so padding a request's source to a longer S (when it shares a
step with longer requests) leaves its results unchanged up to float rounding.

The encoder is a unidirectional GRU: its outputs at positions < length do not depend on the
padding after them, so requests of different lengths can be encoded in one padded batch.

Decoding (both here and in C#): beam search with a shrinking beam. At each step every live
hypothesis proposes every token; the (beam - finished) best candidates by summed log-prob
survive (ties: lower hypothesis index, then lower token id); a candidate ending in end_id is
finished, its score normalized by the GNMT length penalty ((5 + len) / 6) ** alpha where len
counts the generated tokens including the end token. Decoding stops when beam hypotheses have
finished or after max_length tokens (live hypotheses are then finished as they stand). The
n_best best normalized scores are returned, ids without start and end tokens. Greedy = beam 1.
"""
import argparse
import json
import math
import os

import torch
import torch.nn as nn

SEED = 20261126
PAD, START, END, UNK = 0, 1, 2, 3
SPECIALS = ["<pad>", "<s>", "</s>", "<unk>"]
EMB, HIDDEN = 32, 64
MAX_LENGTH = 24
MAX_SOURCE_LENGTH = 32


def vocabulary():
    """A few hundred pronounceable toy words, deterministic."""
    consonants = "bdfgklmnprstvz"
    vowels = "aeiou"
    words = []
    for c1 in consonants:
        for v1 in vowels:
            for c2 in "lnr":
                words.append(c1 + v1 + c2 + "a")
    return SPECIALS + words  # 214 tokens


class Encoder(nn.Module):
    def __init__(self, vocab):
        super().__init__()
        self.emb = nn.Embedding(vocab, EMB, padding_idx=PAD)
        self.gru = nn.GRU(EMB, HIDDEN, batch_first=True)
        self.bridge = nn.Linear(HIDDEN, HIDDEN)

    def forward(self, src_ids, src_lengths):
        out, _ = self.gru(self.emb(src_ids))
        batch = torch.arange(src_ids.shape[0])
        last = out[batch, src_lengths - 1]
        return out, torch.tanh(self.bridge(last))


class DecoderStep(nn.Module):
    """One step: GRU cell (written out, PyTorch's GRUCell equations), Luong 'general' attention."""

    def __init__(self, vocab):
        super().__init__()
        self.emb = nn.Embedding(vocab, EMB)
        self.ih = nn.Linear(EMB, 3 * HIDDEN)
        self.hh = nn.Linear(HIDDEN, 3 * HIDDEN)
        self.attn = nn.Linear(HIDDEN, HIDDEN, bias=False)
        self.combine = nn.Linear(2 * HIDDEN, HIDDEN)
        self.out = nn.Linear(HIDDEN, vocab)

    def forward(self, prev_token, state, enc_out, src_mask):
        x = self.emb(prev_token)
        gi = self.ih(x)
        gh = self.hh(state)
        i_r, i_z, i_n = gi.chunk(3, 1)
        h_r, h_z, h_n = gh.chunk(3, 1)
        r = torch.sigmoid(i_r + h_r)
        z = torch.sigmoid(i_z + h_z)
        n = torch.tanh(i_n + r * h_n)
        h = (1 - z) * n + z * state
        scores = torch.bmm(enc_out, self.attn(h).unsqueeze(2)).squeeze(2)
        scores = scores.masked_fill(src_mask < 0.5, -1e9)
        weights = torch.softmax(scores, dim=1)
        context = torch.bmm(weights.unsqueeze(1), enc_out).squeeze(1)
        o = torch.tanh(self.combine(torch.cat([h, context], dim=1)))
        return torch.log_softmax(self.out(o), dim=1), h


def build_model():
    """The fixture model; the benchmark peer rebuilds the same weights from the seed."""
    torch.manual_seed(SEED)
    vocab = len(vocabulary())
    enc, dec = Encoder(vocab), DecoderStep(vocab)
    with torch.no_grad():
        # A random decoder is nearly uniform; sharper logits keep argmax decisions far from ties
        # (so ONNX Runtime and PyTorch agree token for token) and the end bias makes outputs of
        # varied lengths instead of always running to max_length.
        dec.out.weight.mul_(8.0)
        dec.out.bias[END] += 1.0
    enc.eval()
    dec.eval()
    return enc, dec


def encode(enc, sources):
    lengths = torch.tensor([len(s) for s in sources], dtype=torch.int64)
    width = int(lengths.max())
    ids = torch.full((len(sources), width), PAD, dtype=torch.int64)
    for i, s in enumerate(sources):
        ids[i, : len(s)] = torch.tensor(s, dtype=torch.int64)
    mask = (torch.arange(width)[None, :] < lengths[:, None]).float()
    enc_out, state = enc(ids, lengths)
    return enc_out, state, mask


def length_penalty(length, alpha):
    return ((5.0 + length) / 6.0) ** alpha


def beam_search(enc, dec, source, beam, max_length, alpha, n_best, margins=None):
    """The reference decode of one source (see the module docstring for the exact rules)."""
    enc_out, state, mask = encode(enc, [source])
    live = [([], 0.0)]
    states = state
    finished = []
    for _ in range(max_length):
        width = beam - len(finished)
        prev = torch.tensor([h[0][-1] if h[0] else START for h in live], dtype=torch.int64)
        k = len(live)
        log_probs, new_state = dec(prev, states, enc_out.expand(k, -1, -1), mask.expand(k, -1))
        lp = log_probs.double()
        total = torch.tensor([h[1] for h in live], dtype=torch.float64)[:, None] + lp
        flat = total.flatten()
        order = sorted(range(flat.numel()), key=lambda i: (-float(flat[i]), i))
        if margins is not None and len(order) > width:
            margins.append(float(flat[order[width - 1]] - flat[order[width]]))
        vocab = lp.shape[1]
        next_live, parents = [], []
        for i in order[:width]:
            parent, token = divmod(i, vocab)
            tokens = live[parent][0] + [token]
            score = float(flat[i])
            if token == END:
                finished.append((tokens, score, True))
            else:
                next_live.append((tokens, score))
                parents.append(parent)
        if len(finished) >= beam or not next_live:
            break
        live = next_live
        states = new_state[torch.tensor(parents, dtype=torch.int64)]
    else:
        finished.extend((tokens, score, False) for tokens, score in live)
    ranked = sorted(
        enumerate(finished), key=lambda e: (-(e[1][1] / length_penalty(len(e[1][0]), alpha)), e[0])
    )
    if margins is not None:
        scores = [f[1] / length_penalty(len(f[0]), alpha) for _, f in ranked]
        margins.extend(scores[i] - scores[i + 1] for i in range(min(n_best, len(scores) - 1)))
    result = []
    for _, (tokens, score, ended) in ranked[:n_best]:
        ids = tokens[:-1] if ended else tokens
        result.append({
            "ids": ids,
            "score": score / length_penalty(len(tokens), alpha),
            "log_prob": score,
            "finished": ended,
        })
    return result


def greedy(enc, dec, source, max_length, alpha):
    """Plain argmax decoding, kept apart from beam_search to check that beam 1 equals it."""
    enc_out, state, mask = encode(enc, [source])
    tokens, score, prev = [], 0.0, START
    for _ in range(max_length):
        log_probs, state = dec(torch.tensor([prev]), state, enc_out, mask)
        prev = int(torch.argmax(log_probs[0]))
        score += float(log_probs[0, prev])
        tokens.append(prev)
        if prev == END:
            break
    ended = tokens[-1] == END
    return {"ids": tokens[:-1] if ended else tokens, "score": score / length_penalty(len(tokens), alpha), "log_prob": score, "finished": ended}


def export(enc, dec, out_dir):
    src = torch.tensor([[5, 6, 7], [8, 9, PAD]], dtype=torch.int64)
    lengths = torch.tensor([3, 2], dtype=torch.int64)
    torch.onnx.export(
        enc, (src, lengths), os.path.join(out_dir, "encoder.onnx"),
        input_names=["src_ids", "src_lengths"], output_names=["enc_out", "state"],
        dynamic_axes={"src_ids": {0: "batch", 1: "src_len"}, "src_lengths": {0: "batch"},
                      "enc_out": {0: "batch", 1: "src_len"}, "state": {0: "batch"}},
        opset_version=14, do_constant_folding=True)
    enc_out, state = enc(src, lengths)
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
    prev = torch.tensor([START, START], dtype=torch.int64)
    torch.onnx.export(
        dec, (prev, state, enc_out, mask), os.path.join(out_dir, "decoder.onnx"),
        input_names=["prev_token", "state", "enc_out", "src_mask"], output_names=["log_probs", "new_state"],
        dynamic_axes={"prev_token": {0: "batch"}, "state": {0: "batch"}, "enc_out": {0: "batch", 1: "src_len"},
                      "src_mask": {0: "batch", 1: "src_len"}, "log_probs": {0: "batch"}, "new_state": {0: "batch"}},
        opset_version=14, do_constant_folding=True)


def safe_cases(enc, dec, words):
    """Random sources whose decodes stay clear of near-ties (ORT and PyTorch round differently)."""
    gen = torch.Generator().manual_seed(SEED + 1)
    cases = []
    settings = [(1, 0.6, 1), (4, 0.6, 3), (5, 1.0, 5), (3, 0.0, 2)]
    tries = 0
    while len(cases) < 10 and tries < 400:
        tries += 1
        length = int(torch.randint(1, 19, (1,), generator=gen))
        source = [int(t) for t in torch.randint(len(SPECIALS), len(words), (length,), generator=gen)]
        beam, alpha, n_best = settings[len(cases) % len(settings)]
        margins = []
        with torch.no_grad():
            result = beam_search(enc, dec, source, beam, MAX_LENGTH, alpha, n_best, margins)
            if beam == 1:
                assert greedy(enc, dec, source, MAX_LENGTH, alpha)["ids"] == result[0]["ids"], "beam 1 differs from greedy"
        if margins and min(margins) < 2e-3:
            continue
        if any(case["source"] == source for case in cases):
            continue
        cases.append({
            "source": source,
            "text": " ".join(words[t] for t in source),
            "beam": beam, "max_length": MAX_LENGTH, "length_penalty": alpha, "n_best": n_best,
            "hypotheses": result,
            "texts": [" ".join(words[t] for t in h["ids"]) for h in result],
            "min_margin": min(margins) if margins else None,
        })
    assert len(cases) == 10, f"only {len(cases)} safe cases in {tries} tries"
    return cases


def check_padding_invariance(enc, dec):
    """One padded batch gives the per-source encodings: the property batching relies on."""
    sources = [[5, 6, 7, 8, 9, 10], [11, 12], [13, 14, 15, 16]]
    with torch.no_grad():
        enc_out, state, _ = encode(enc, sources)
        for i, s in enumerate(sources):
            alone_out, alone_state, _ = encode(enc, [s])
            assert torch.allclose(enc_out[i, : len(s)], alone_out[0], atol=1e-6)
            assert torch.allclose(state[i], alone_state[0], atol=1e-6)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "seq2seq", "toy", "1"))
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(1)
    words = vocabulary()
    enc, dec = build_model()
    with torch.no_grad():
        export(enc, dec, args.out)
    check_padding_invariance(enc, dec)
    with open(os.path.join(args.out, "vocab.txt"), "w") as f:
        f.write("\n".join(words) + "\n")
    model = {
        "kind": "seq2seq",
        "encoder": "encoder.onnx",
        "decoder": "decoder.onnx",
        "vocab": "vocab.txt",
        "pad_id": PAD, "start_id": START, "end_id": END, "unk_id": UNK,
        "max_length": MAX_LENGTH,
        "max_source_length": MAX_SOURCE_LENGTH,
        "length_penalty": 0.6,
    }
    with open(os.path.join(args.out, "model.json"), "w") as f:
        json.dump(model, f, indent=2)
        f.write("\n")
    cases = safe_cases(enc, dec, words)
    with torch.no_grad():
        enc_sources = [[5, 6, 7, 8], [9, 10]]
        enc_out, enc_state, _ = encode(enc, enc_sources)
    encoder_reference = {
        "sources": enc_sources,
        "enc_out_first_row": [round(float(x), 7) for x in enc_out[0].flatten()],
        "state": [round(float(x), 7) for x in enc_state.flatten()],
    }
    with open(os.path.join(args.out, "reference.json"), "w") as f:
        json.dump({"seed": SEED, "cases": cases, "encoder": encoder_reference}, f, indent=1)
        f.write("\n")
    for c in cases:
        print(f"len {len(c['source']):2d} beam {c['beam']} -> {[len(h['ids']) for h in c['hypotheses']]} margin {c['min_margin']}")


if __name__ == "__main__":
    main()
