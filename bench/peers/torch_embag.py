#!/usr/bin/python3
"""PyTorch 1.13 embedding-bag peer for bench/Recsys.Benchmarks `embag` (same table, same shapes).

Usage: env -u OPENBLAS_CORETYPE /usr/bin/python3 bench/peers/torch_embag.py [--gib 4] [--dim 64]
         [--formats fp32,fp16,int8,int4] [--p 20,80] [--bags 16384] [--batches 12] [--huge 1] [--threads 1]
One table of rows = gib * 2^30 / (4 * dim) rows in every format (4 GiB of fp32 at D=64), in an anonymous
mmap advised MADV_HUGEPAGE (--huge 1) or not (--huge 0). Uniform random ids, B bags of P ids per batch,
median batch of N (first discarded), by wall time and by this thread's CPU time (time.thread_time;
with 1 thread ATen runs the bag loop on the calling thread). fp32/fp16: F.embedding_bag(mode="sum"); int8/int4:
torch.ops.quantized.embedding_bag_byte_rowwise_offsets / embedding_bag_4bit_rowwise_offsets on FBGEMM
fused rows (this Debian build has no FBGEMM, so those run ATen's reference loops).
"""
import argparse, mmap, statistics, time
import numpy as np
import torch
import torch.nn.functional as F

ap = argparse.ArgumentParser()
ap.add_argument("--gib", type=float, default=4)
ap.add_argument("--dim", type=int, default=64)
ap.add_argument("--formats", default="fp32,fp16,int8,int4")
ap.add_argument("--p", default="20,80")
ap.add_argument("--bags", type=int, default=16384)
ap.add_argument("--batches", type=int, default=12)
ap.add_argument("--huge", type=int, default=1)
ap.add_argument("--threads", type=int, default=1)
a = ap.parse_args()
torch.set_num_threads(a.threads)
D = a.dim
rows = int(a.gib * (1 << 30)) // (4 * D)
row_bytes = {"fp32": 4 * D, "fp16": 2 * D, "int8": D + 8, "int4": (D + 1) // 2 + 4}


def anon_huge_kb():
    try:
        with open("/proc/self/smaps_rollup") as f:
            for line in f:
                if line.startswith("AnonHugePages:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


def table(fmt):
    nbytes = rows * row_bytes[fmt]
    mm = mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    mm.madvise(mmap.MADV_HUGEPAGE if a.huge else mmap.MADV_NOHUGEPAGE)
    raw = np.frombuffer(mm, dtype=np.uint8)
    # Same word pattern as gather.c: finite floats of moderate size.
    words = raw.view(np.uint32)
    chunk = 1 << 24
    for s in range(0, words.size, chunk):
        i = np.arange(s, min(words.size, s + chunk), dtype=np.uint64)
        words[s:s + i.size] = ((i * np.uint64(2654435761)) & np.uint64(0x3F7F7F7F)).astype(np.uint32)
        if fmt == "fp16":  # two finite halves per word, |x| in [1/8, 1)
            words[s:s + i.size] = (words[s:s + i.size] & np.uint32(0x8FFF8FFF)) | np.uint32(0x30003000)
    t = torch.from_numpy(raw)
    if fmt == "fp32":
        return mm, t.view(torch.float32).view(rows, D)
    if fmt == "fp16":
        return mm, t.view(torch.float16).view(rows, D)
    q = t.view(rows, row_bytes[fmt])
    hdr = q[:, -8:].contiguous() if fmt == "int8" else q[:, -4:].contiguous()
    if fmt == "int8":
        hdr.view(torch.float32)[:, 0] = 0.01
        hdr.view(torch.float32)[:, 1] = -0.5
        q[:, -8:] = hdr
    else:
        hdr.view(torch.float16)[:, 0] = 0.1
        hdr.view(torch.float16)[:, 1] = -0.5
        q[:, -4:] = hdr
    return mm, q


def xorshift_ids(n):
    # gather.c's generator, vectorised per stream is not possible; numpy's uniform ids are equivalent in law.
    return torch.from_numpy(np.random.default_rng(1).integers(0, rows, n, dtype=np.int64))


print(f"INFO torch={torch.__version__} threads={torch.get_num_threads()} rows={rows} D={D} bags={a.bags} huge={a.huge}", flush=True)
for fmt in a.formats.split(","):
    mm, w = table(fmt)
    print(f"INFO format={fmt} table={rows * row_bytes[fmt] / (1 << 30):.2f}GiB AnonHugePages={anon_huge_kb()}kB", flush=True)
    for P in (int(x) for x in a.p.split(",")):
        per = a.bags * P
        ids = xorshift_ids(per * a.batches)
        off = torch.arange(0, per + 1, P, dtype=torch.int64)
        ts, cs = [], []
        with torch.inference_mode():
            for n in range(a.batches):
                idx = ids[n * per:(n + 1) * per]
                c0 = time.thread_time()
                t0 = time.perf_counter()
                if fmt in ("fp32", "fp16"):
                    out = F.embedding_bag(idx, w, off, mode="sum", include_last_offset=True)
                elif fmt == "int8":
                    out = torch.ops.quantized.embedding_bag_byte_rowwise_offsets(w, idx, off, False, 0, False, None, None, True)
                else:
                    out = torch.ops.quantized.embedding_bag_4bit_rowwise_offsets(w, idx, off, False, 0, False, None, None, True)
                ts.append(time.perf_counter() - t0)
                cs.append(time.thread_time() - c0)
        ts = sorted(ts[1:])
        cmed = statistics.median(sorted(cs[1:]))
        med = statistics.median(ts)
        print(f"RESULT impl=torch format={fmt} D={D} P={P} threads={a.threads} bags={a.bags} huge={a.huge} "
              f"Mrows_s_med={per / med / 1e6:.2f} Mrows_s_min={per / ts[-1] / 1e6:.2f} Mrows_s_max={per / ts[0] / 1e6:.2f} "
              f"Mrows_s_cpu_med={per / cmed / 1e6:.2f}", flush=True)
    del w
    mm.close()
