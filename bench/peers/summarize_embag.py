#!/usr/bin/python3
"""Medians over rounds of a bench/peers/run_embag.sh log, and the ratios the issue asks for.
Usage: python3 bench/peers/summarize_embag.py bench/embag-run.log"""
import collections, re, statistics, sys

runs = collections.defaultdict(lambda: collections.defaultdict(list))  # (impl, fmt, P, extra) -> metric -> [values]
paired = collections.defaultdict(lambda: collections.defaultdict(list))  # (fmt, P, pf) -> metric -> [per-round ratio]
for line in open(sys.argv[1]):
    if "RATIO" in line:
        kv = dict(re.findall(r"(\w+)=([^\s]+)", line))
        for metric in ("wall_med", "cpu_med"):
            paired[(kv["format"], int(kv["P"]), kv["pf"])][metric].append(float(kv[metric]))
        continue
    if "RESULT" not in line:
        continue
    kv = dict(re.findall(r"(\w+)=([^\s]+)", line))
    if kv.get("impl") == "c-inproc":
        impl, fmt, extra = "C in-process", kv["format"], f"pf={kv['pf']}"
    elif line.startswith("C "):
        impl, fmt = "C gather", {"f32": "fp32", "i8": "int8"}[kv["mode"]]
        extra = f"pf={kv['pf']}"
    elif line.startswith("CS "):
        impl, fmt, extra = "ours", kv["format"], f"pf={kv['pf']}"
    else:
        impl, fmt, extra = "torch", kv["format"], f"huge={kv['huge']}"
    key = (impl, fmt, int(kv["P"]), extra)
    runs[key]["wall"].append(float(kv["Mrows_s_med"]))
    runs[key]["cpu"].append(float(kv["Mrows_s_cpu_med"]))

med = {k: {m: statistics.median(v) for m, v in d.items()} for k, d in runs.items()}
spread = {k: {m: (min(v), max(v), len(v)) for m, v in d.items()} for k, d in runs.items()}
print("| impl | format | P | config | M rows/s wall (median of rounds; min-max) | M rows/s CPU time (median; min-max) | rounds |")
print("|---|---|---|---|---|---|---|")
for k in sorted(med, key=lambda k: (k[2], k[1], k[0], k[3])):
    w, c = med[k]["wall"], med[k]["cpu"]
    sw, sc = spread[k]["wall"], spread[k]["cpu"]
    print(f"| {k[0]} | {k[1]} | {k[2]} | {k[3]} | {w:.1f} ({sw[0]:.1f}-{sw[1]:.1f}) | {c:.1f} ({sc[0]:.1f}-{sc[1]:.1f}) | {sw[2]} |")


def best(impl, fmt, p, metric):
    vals = [(v[metric], k[3]) for k, v in med.items() if k[0] == impl and k[1] == fmt and k[2] == p]
    return max(vals) if vals else (float("nan"), "-")


print()
print("| P | metric | ours fp32 / C limit fp32 | ours fp32 / torch fp32 (THP) | ours fp32 / torch fp32 (4 KiB) | ours int8 / C limit int8 | ours int8 / ours fp32 | ours int4 / ours fp32 | ours fp16 / ours fp32 |")
print("|---|---|---|---|---|---|---|---|---|")
for p in sorted({k[2] for k in med}):
    for metric in ("wall", "cpu"):
        o32 = best("ours", "fp32", p, metric)[0]
        c32 = best("C gather", "fp32", p, metric)[0]
        t_thp = med.get(("torch", "fp32", p, "huge=1"), {}).get(metric, float("nan"))
        t_4k = med.get(("torch", "fp32", p, "huge=0"), {}).get(metric, float("nan"))
        o8, c8 = best("ours", "int8", p, metric)[0], best("C gather", "int8", p, metric)[0]
        o4, o16 = best("ours", "int4", p, metric)[0], best("ours", "fp16", p, metric)[0]
        print(f"| {p} | {metric} | {o32 / c32:.2f} | {o32 / t_thp:.2f} | {o32 / t_4k:.2f} | {o8 / c8:.2f} | {o8 / o32:.2f} | {o4 / o32:.2f} | {o16 / o32:.2f} |")

if paired:
    print()
    print("Interleaved in one process (ours and gather.c's kernel alternate batch by batch on the same table and ids):")
    print("ours / C = median over rounds of the per-batch-median ratio (C time / our time; > 1 = ours faster).")
    print()
    print("| format | P | pf | ours / C wall (median; min-max over rounds) | ours / C CPU time (median; min-max) | rounds |")
    print("|---|---|---|---|---|---|")
    for k in sorted(paired, key=lambda k: (k[0], k[1], int(k[2]))):
        w, c = paired[k]["wall_med"], paired[k]["cpu_med"]
        print(f"| {k[0]} | {k[1]} | {k[2]} | {statistics.median(w):.2f} ({min(w):.2f}-{max(w):.2f}) | {statistics.median(c):.2f} ({min(c):.2f}-{max(c):.2f}) | {len(w)} |")
