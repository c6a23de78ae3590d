#!/usr/bin/python3
"""PyTorch peer for bench/RESULTS-serving.md: a reference-style DLRM (EmbeddingBag + nn.Sequential,
the dot interaction of facebookresearch/dlrm) built from a Recsys model directory (model.json +
weights.safetensors, fp32 tables), timed on its bare forward.

  env -u OPENBLAS_CORETYPE OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 bench/peers/torch_dlrm.py \
      --model bench-models/rmc1/1 --batch 128 --batches 4 --requests bench-models/requests-rmc1.json

Writes the requests it times (JSON ranking bodies, one per batch, plus its scores for the first)
so the C# side scores exactly the same samples, then prints samples/s for 1 and 2 threads.
"""
import argparse, json, struct, time
import numpy as np
import torch
import torch.nn as nn


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + n)
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] != "F32":
            raise SystemExit(f"{path}: {name} is {info['dtype']}; this peer runs fp32 tables only")
        a, b = info["data_offsets"]
        out[name] = torch.from_numpy(np.frombuffer(data[a:b], dtype=np.float32).reshape(info["shape"]).copy())
    return out


class Dlrm(nn.Module):
    def __init__(self, spec, w):
        super().__init__()
        self.itself = spec.get("interaction_itself", False)
        self.kind = spec.get("interaction", "dot")
        self.emb_l = nn.ModuleList()
        for k, t in enumerate(spec["tables"]):
            bag = nn.EmbeddingBag(t["rows"], t["dim"], mode=t.get("pooling", "sum"))
            bag.weight.data = w[f"emb_l.{k}.weight"]
            self.emb_l.append(bag)
        self.bot_l = self.mlp(w, "bot_l", len(spec["bottom_mlp"]), last_sigmoid=False)
        self.top_l = self.mlp(w, "top_l", len(spec["top_mlp"]), last_sigmoid=True)

    @staticmethod
    def mlp(w, prefix, n, last_sigmoid):
        layers = []
        for i in range(n):
            W, b = w[f"{prefix}.{2 * i}.weight"], w[f"{prefix}.{2 * i}.bias"]
            lin = nn.Linear(W.shape[1], W.shape[0])
            lin.weight.data, lin.bias.data = W, b
            layers += [lin, nn.Sigmoid() if (last_sigmoid and i == n - 1) else nn.ReLU()]
        return nn.Sequential(*layers)

    def forward(self, dense, ids, offsets):
        x = self.bot_l(dense)
        ly = [bag(ids[k], offsets[k]) for k, bag in enumerate(self.emb_l)]
        if self.kind == "cat":
            return self.top_l(torch.cat([x] + ly, dim=1))
        bsz, d = x.shape
        T = torch.cat([x] + ly, dim=1).view((bsz, -1, d))
        Z = torch.bmm(T, torch.transpose(T, 1, 2))
        ni = T.shape[1]
        off = 1 if self.itself else 0
        li = torch.tensor([i for i in range(ni) for j in range(i + off)])
        lj = torch.tensor([j for i in range(ni) for j in range(i + off)])
        return self.top_l(torch.cat([x, Z[:, li, lj]], dim=1))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--batches", type=int, default=4)
    p.add_argument("--requests", required=True)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--seed", type=int, default=7)
    a = p.parse_args()
    spec = json.load(open(f"{a.model}/model.json"))
    model = Dlrm(spec, read_safetensors(f"{a.model}/{spec.get('weights', 'weights.safetensors')}")).eval()

    rng = np.random.default_rng(a.seed)
    batches, bodies = [], []
    for _ in range(a.batches):
        dense = rng.uniform(0, 2, size=(a.batch, spec["dense_features"])).astype(np.float32)
        ids, offs, sparse = [], [], {}
        for t in spec["tables"]:
            L = max(1, t.get("lookups", 1))
            tid = rng.integers(0, t["rows"], size=(a.batch, L), dtype=np.int64)
            ids.append(torch.from_numpy(tid.reshape(-1)))
            offs.append(torch.arange(0, a.batch * L, L, dtype=torch.int64))
            sparse[t["name"]] = tid.tolist()
        batches.append((torch.from_numpy(dense), ids, offs))
        bodies.append({"dense": dense.tolist(), "sparse": sparse})

    with torch.no_grad():
        first = model(*batches[0]).reshape(-1).tolist()
    json.dump({"bodies": bodies, "torch_scores": first}, open(a.requests, "w"))

    for threads in (1, 2):
        torch.set_num_threads(threads)
        with torch.no_grad():
            for b in batches:
                model(*b)
            runs = []
            for _ in range(3):
                n, t0 = 0, time.perf_counter()
                while time.perf_counter() - t0 < a.seconds / 3:
                    for b in batches:
                        model(*b)
                        n += a.batch
                runs.append(n / (time.perf_counter() - t0))
        print(json.dumps({"peer": "pytorch", "threads": threads, "batch": a.batch,
                          "samples_per_s": sorted(runs)[1], "runs": [round(r) for r in runs]}))


if __name__ == "__main__":
    main()
