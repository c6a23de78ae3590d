#!/usr/bin/python3
"""Golden files for the row formats and the embedding bag (tests/fixtures/rowformats/).

Run: env -u OPENBLAS_CORETYPE /usr/bin/python3 tools/make_rowformat_fixtures.py
Needs Debian's python3-torch 1.13. Writes one JSON file per D; arrays are base64 of
little-endian bytes so every float and byte round-trips exactly.

What each case holds (R rows of dimension D, B bags over them):
  weights_f32          the fp32 table
  int8_prepacked       torch.ops.quantized.embedding_bag_byte_prepack(table)   (R x (D + 8))
  int4_prepacked       torch.ops.quantized.embedding_bag_4bit_prepack(table)   (R x (ceil(D/2) + 4))
                       torch accepts only even D; for odd D the bytes come from fbgemm_nbit_reference()
                       below, which is checked to equal torch's output on every even D first.
  indices, offsets     int64 ids and int32 CSR offsets (B + 1 entries, includes empty bags)
  per_sample_weights   one fp32 weight per index
  out_<fmt>_<mode>     pooled output, B x D fp32:
     fp32  F.embedding_bag on the fp32 table
     fp16  F.embedding_bag on table.half().float()  (fp16 storage, fp32 accumulation)
     int8  sum: torch.ops.quantized.embedding_bag_byte_rowwise_offsets; mean: F.embedding_bag on
           embedding_bag_byte_unpack(prepacked) (this torch's quantized op ignores mode=mean)
     int4  sum: embedding_bag_4bit_rowwise_offsets (even D); odd D and mean: F.embedding_bag on the
           dequantized reference rows
  modes: sum_w (sum with per_sample_weights), sum, mean
"""
import base64, json, os, sys
import numpy as np
import torch
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "rowformats")
DIMS = [1, 2, 3, 7, 8, 16, 17, 64, 65]
rng = np.random.default_rng(20261126)


def b64(a):
    return base64.b64encode(np.ascontiguousarray(a).tobytes()).decode()


def make_rows(d):
    rows = [
        rng.standard_normal(d),                      # ordinary
        rng.uniform(-5.0, -1.0, d),                  # all negative
        rng.uniform(1.0, 3.0, d),                    # all positive, min far from 0
        np.full(d, 0.3),                             # constant rows: range 0
        np.zeros(d),
        np.full(d, -2.0),
        rng.standard_normal(d) * 1e-3,               # tiny range
        rng.standard_normal(d) * 100.0,              # wide range
        np.round(rng.uniform(-8, 8, d)) / 4.0,       # exact ties for rounding
        rng.uniform(-1.0, 1.0, d),
        rng.standard_normal(d) * 0.05 + 7.0,         # fp16 bias rounding matters
        rng.uniform(-0.01, 60000.0, d),              # near fp16 max
    ]
    return np.stack(rows).astype(np.float32)


def f16(x):
    return np.float32(np.float16(np.float32(x)))


def fbgemm_nbit_reference(w, bits=4):
    """FBGEMM's FloatToFusedNBitRowwiseQuantizedSBHalf reference, for odd D that torch refuses."""
    r, d = w.shape
    per = 8 // bits
    cols = (d + per - 1) // per
    out = np.zeros((r, cols + 4), np.uint8)
    for i in range(r):
        row = w[i]
        xmin = f16(row.min())
        xmax = np.float32(row.max())
        rng_ = np.float32(xmax - xmin)
        scale_h = np.float16(np.float32(1.0) if rng_ == 0 else np.float32(rng_ / np.float32((1 << bits) - 1)))
        scale = np.float32(scale_h)
        inv = np.float32(1.0) if scale == 0 else np.float32(np.float32(1.0) / scale)
        if scale == 0 or np.isinf(inv):
            scale_h, inv = np.float16(1.0), np.float32(1.0)
        q = np.rint(np.float32(row - xmin) * inv).astype(np.int64)  # rint = lrintf, half to even
        q = np.clip(q, 0, (1 << bits) - 1).astype(np.uint8)
        for c in range(d):
            out[i, c // per] |= q[c] << ((c % per) * bits)
        out[i, cols:cols + 2] = np.frombuffer(np.float16(scale_h).tobytes(), np.uint8)
        out[i, cols + 2:cols + 4] = np.frombuffer(np.float16(xmin).tobytes(), np.uint8)
    return out


def dequant_nbit(p, d, bits=4):
    per = 8 // bits
    cols = (d + per - 1) // per
    scale = p[:, cols:cols + 2].copy().view(np.float16).astype(np.float32)
    bias = p[:, cols + 2:cols + 4].copy().view(np.float16).astype(np.float32)
    q = np.zeros((p.shape[0], d), np.float32)
    for c in range(d):
        q[:, c] = (p[:, c // per] >> ((c % per) * bits)) & ((1 << bits) - 1)
    return q * scale + bias


def make_bags(r):
    sizes = [3, 0, 1, 5, 2, 0, 7, 4]  # includes empty bags, and a repeated id below
    idx = rng.integers(0, r, sum(sizes)).astype(np.int64)
    idx[1] = idx[0]
    off = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int32)
    psw = rng.uniform(-1.5, 2.0, len(idx)).astype(np.float32)
    return idx, off, psw


def pool(table_f32, idx, off, psw, mode):
    t = torch.from_numpy(table_f32)
    i = torch.from_numpy(idx)
    o = torch.from_numpy(off.astype(np.int64))
    w = torch.from_numpy(psw) if psw is not None else None
    return F.embedding_bag(i, t, o, mode=mode, per_sample_weights=w, include_last_offset=True).numpy().astype(np.float32)


def qpool(op, packed, idx, off, psw):
    return op(torch.from_numpy(packed), torch.from_numpy(idx), torch.from_numpy(off.astype(np.int64)),
              False, 0, False, None if psw is None else torch.from_numpy(psw), None, True).numpy().astype(np.float32)


def main():
    os.makedirs(OUT, exist_ok=True)
    total = 0
    for d in DIMS:
        w = make_rows(d)
        r = w.shape[0]
        tw = torch.from_numpy(w)
        p8 = torch.ops.quantized.embedding_bag_byte_prepack(tw).numpy()
        p4_ref = fbgemm_nbit_reference(w)
        if d % 2 == 0:
            p4 = torch.ops.quantized.embedding_bag_4bit_prepack(tw).numpy()
            if not np.array_equal(p4, p4_ref):
                bad = np.argwhere(p4 != p4_ref)[:5]
                sys.exit(f"fbgemm_nbit_reference differs from torch at D={d}: {bad.tolist()}")
            p4_src = "torch.ops.quantized.embedding_bag_4bit_prepack"
        else:
            p4 = p4_ref
            p4_src = "fbgemm_nbit_reference (torch needs even D)"
        deq8 = torch.ops.quantized.embedding_bag_byte_unpack(torch.from_numpy(p8)).numpy().astype(np.float32)
        deq4 = dequant_nbit(p4, d)
        h = w.astype(np.float16).astype(np.float32)
        idx, off, psw = make_bags(r)
        case = {
            "dim": d, "rows": r, "bags": len(off) - 1,
            "int4_source": p4_src,
            "weights_f32": b64(w.astype("<f4")),
            "int8_prepacked": b64(p8), "int4_prepacked": b64(p4),
            "indices": b64(idx.astype("<i8")), "offsets": b64(off.astype("<i4")),
            "per_sample_weights": b64(psw.astype("<f4")),
        }
        outs = {}
        for mode, wts, tmode in (("sum_w", psw, "sum"), ("sum", None, "sum"), ("mean", None, "mean")):
            outs[f"out_fp32_{mode}"] = pool(w, idx, off, wts, tmode)
            outs[f"out_fp16_{mode}"] = pool(h, idx, off, wts, tmode)
            if mode == "mean":
                outs[f"out_int8_{mode}"] = pool(deq8, idx, off, wts, tmode)
                outs[f"out_int4_{mode}"] = pool(deq4, idx, off, wts, tmode)
            else:
                outs[f"out_int8_{mode}"] = qpool(torch.ops.quantized.embedding_bag_byte_rowwise_offsets, p8, idx, off, wts)
                outs[f"out_int4_{mode}"] = (qpool(torch.ops.quantized.embedding_bag_4bit_rowwise_offsets, p4, idx, off, wts)
                                           if d % 2 == 0 else pool(deq4, idx, off, wts, tmode))
        for k, v in outs.items():
            case[k] = b64(v.astype("<f4"))
        path = os.path.join(OUT, f"rows_d{d}.json")
        with open(path, "w") as f:
            json.dump(case, f, indent=0)
        total += os.path.getsize(path)
    print(f"wrote {len(DIMS)} files, {total} bytes, torch {torch.__version__}")


if __name__ == "__main__":
    main()
