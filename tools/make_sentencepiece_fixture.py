#!/usr/bin/python3
"""Trains two tiny SentencePiece models (unigram and BPE) on a committed text and writes the golden
encodings and decodings the Python sentencepiece library produces, plus PyTorch reference
translations of SentencePiece-encoded sentences by the toy seq2seq model.

Run:  /usr/bin/python3 tools/make_sentencepiece_fixture.py [--out tests/fixtures/seq2seq/sentencepiece]
Needs Debian python3-sentencepiece (apt-get install python3-sentencepiece) and python3-torch.
The C# tests only read the files written here; CI does not run Python.

Files (in --out):
  corpus.txt      the training text (committed input, not written here)
  unigram.model   SentencePiece unigram model, 214 pieces (the toy decoder's vocabulary size)
  bpe.model       SentencePiece BPE model, same size and special ids
  golden.json     per model: for each sentence the ids and pieces from encode and the text from
                  decode(ids); extra id lists with their decode; and, for the unigram model, the
                  toy model's reference translations of the sentences that fit max_source_length

The special ids match the toy model's model.json (pad 0, start 1, end 2, unk 3), so the
tokenizer can stand in for vocab.txt without touching the graphs. Both models keep the trainer's
default normalization (nmt_nfkc) and add the dummy prefix, as real translation models do.
"""
import argparse
import json
import os
import sys

import sentencepiece as spm
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_seq2seq_fixtures as toy  # noqa: E402

VOCAB = 214  # len(toy.vocabulary()): the decoder's log_probs width
MARGIN = 2e-3  # as toy.safe_cases: ORT and PyTorch round differently, near-ties are left out

# Sentences chosen to exercise the tokenizer: plain ASCII, leading/trailing/repeated spaces,
# accented Latin letters seen in training, NFKC-normalized forms (full-width, ligatures,
# no-break and ideographic spaces, combining accents), characters never seen (emoji, CJK,
# upper case) that must become <unk>, and control characters.
SENTENCES = [
    "the quick brown fox jumps over the lazy dog.",
    "  leading spaces before the words",
    "trailing spaces   ",
    "many    spaces   between   words",
    "où est la gare ? à côté du café.",
    "schöne grüße aus köln",
    "crème brûlée for a naïve résumé",
    "¿dónde está el niño?",
    "ＦＵＬＬ width ｔｅｘｔ and the ﬁne ligature",
    "emoji 🙂 are unknown",
    "日本語 is unknown too",
    "UPPER Case Words",
    "tab\tand newline\nin the text",
    "numbers 0123456789 and 3.14",
    "the beam search decoder",
    "a",
    "no\u00a0break space and\u3000ideographic space",
    "combining e\u0301 accent and é",
    "symbols @#$%^&*() ~ <s> </s>",
    "hello, world!",
    "ß and ẞ and ﬀ",
    "the cat sat on the mat",
    "short requests should not wait",
    "the dog sleeps",
]

# Id lists a decoder may emit: control ids inside the text, unk, and a piece run without the
# word marker at the start.
DECODE_ONLY = [[1, 20, 30, 2], [3, 3], [0, 40, 0, 41], [100, 101, 102, 103, 104], [213, 4, 5]]


def train(corpus, out, model_type):
    prefix = os.path.join(out, model_type)
    spm.SentencePieceTrainer.train(
        input=corpus, model_prefix=prefix, model_type=model_type, vocab_size=VOCAB,
        pad_id=toy.PAD, bos_id=toy.START, eos_id=toy.END, unk_id=toy.UNK,
        num_threads=1, minloglevel=2)
    os.remove(prefix + ".vocab")  # the .model holds the pieces; the .vocab is a readable copy only
    return spm.SentencePieceProcessor(model_file=prefix + ".model")


def golden(sp):
    cases = []
    for s in SENTENCES:
        ids = sp.encode(s)
        cases.append({"text": s, "ids": ids, "pieces": [sp.id_to_piece(i) for i in ids], "decoded": sp.decode(ids)})
    decodes = [{"ids": ids, "text": sp.decode(ids)} for ids in DECODE_ONLY]
    return {"vocab_size": sp.get_piece_size(), "encode": cases, "decode": decodes}


def translations(sp):
    """The toy model's beam search over SentencePiece ids; texts decoded by the Python library."""
    enc, dec = toy.build_model()
    settings = [(1, 0.6, 1), (4, 0.6, 3), (5, 1.0, 2)]
    result = []
    for k, s in enumerate(SENTENCES):
        source = sp.encode(s)
        if not 1 <= len(source) <= toy.MAX_SOURCE_LENGTH:
            continue
        beam, alpha, n_best = settings[k % len(settings)]
        margins = []
        with torch.no_grad():
            hyps = toy.beam_search(enc, dec, source, beam, toy.MAX_LENGTH, alpha, n_best, margins)
        if margins and min(margins) < MARGIN:
            continue
        result.append({
            "text": s, "source": source,
            "beam": beam, "max_length": toy.MAX_LENGTH, "length_penalty": alpha, "n_best": n_best,
            "hypotheses": hyps, "texts": [sp.decode(h["ids"]) for h in hyps],
            "min_margin": min(margins) if margins else None,
        })
    return result


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "seq2seq", "sentencepiece"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    corpus = os.path.join(args.out, "corpus.txt")
    assert len(toy.vocabulary()) == VOCAB
    out = {"sentencepiece_version": spm.__version__}
    for model_type in ["unigram", "bpe"]:
        sp = train(corpus, args.out, model_type)
        out[model_type] = golden(sp)
        if model_type == "unigram":
            out["translations"] = translations(sp)
    with open(os.path.join(args.out, "golden.json"), "w", encoding="utf-8") as f:
        json.dump(out, f, indent=1, ensure_ascii=False)
        f.write("\n")
    for model_type in ["unigram", "bpe"]:
        n = [len(c["ids"]) for c in out[model_type]["encode"]]
        print(f"{model_type}: {out[model_type]['vocab_size']} pieces, sentence lengths {n}")
    print(f"translations: {len(out['translations'])} of {len(SENTENCES)} sentences (margin >= {MARGIN})")


if __name__ == "__main__":
    main()
