#!/usr/bin/python3
"""Regenerates tests/fixtures/dlrm/<config>/: small DLRMs scored by PyTorch.

Run with the Debian torch (1.13):  /usr/bin/python3 tools/make_dlrm_fixtures.py

The network below keeps the module structure, the state_dict names and the forward pass of
the reference implementation (facebookresearch/dlrm, dlrm_s_pytorch.py: create_mlp,
create_emb, apply_mlp, apply_emb, interact_features, sequential_forward), so a checkpoint of
the reference loads into Recsys by the same names these fixtures use.

Each config directory holds:
  model.json                 the Recsys model description (tables stored as fp32)
  weights.safetensors        the state_dict, F32, written by hand (no safetensors package here)
  weights-int8.safetensors   emb_l.k.weight as FBGEMM's byte prepack (U8, rows x (dim + 8)),
  weights-int4.safetensors   ... and 4-bit prepack (U8, rows x (dim/2 + 4)), MLPs as F32
  request.json               a ranking body: {"dense", "sparse", "weights"?}
  expected.json              scores per storage: "fp32" (nn.EmbeddingBag), "fp16" (rows
                             rounded to half), "int8"/"int4" (torch.ops.quantized
                             embedding_bag_*_rowwise_offsets over the prepacked rows)
The quantized ops have no mean mode (mode=1 is silently summed in 1.13), so for mean tables
the quantized sum is divided by the bag size here, as nn.EmbeddingBag(mode="mean") does.
"""
import json
import math
import os
import struct
import sys

import torch
import torch.nn as nn

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "dlrm")


class DLRM_Net(nn.Module):
    """The reference DLRM reduced to its inference path (no model/data parallelism, no QR/MD embeddings)."""

    def create_mlp(self, ln, sigmoid_layer):
        layers = nn.ModuleList()
        for i in range(0, ln.size - 1 if hasattr(ln, "size") else len(ln) - 1):
            n = ln[i]
            m = ln[i + 1]
            LL = nn.Linear(int(n), int(m), bias=True)
            mean = 0.0
            std_dev = math.sqrt(2 / (m + n))
            LL.weight.data.normal_(mean, std_dev)
            LL.bias.data.normal_(mean, math.sqrt(1 / m))
            layers.append(LL)
            if i == sigmoid_layer:
                layers.append(nn.Sigmoid())
            else:
                layers.append(nn.ReLU())
        return torch.nn.Sequential(*layers)

    def create_emb(self, m, ln, modes):
        emb_l = nn.ModuleList()
        for i in range(0, len(ln)):
            n = ln[i]
            EE = nn.EmbeddingBag(n, m[i], mode=modes[i], sparse=True)
            # Wider than the reference's U(-1/sqrt(n), 1/sqrt(n)) so the interaction, not the
            # bottom MLP alone, decides the scores of these tiny tables.
            EE.weight.data.uniform_(-0.5, 0.5)
            emb_l.append(EE)
        return emb_l

    def __init__(self, m_spa, ln_emb, ln_bot, ln_top, arch_interaction_op, arch_interaction_itself, modes):
        super().__init__()
        self.arch_interaction_op = arch_interaction_op
        self.arch_interaction_itself = arch_interaction_itself
        self.emb_l = self.create_emb(m_spa, ln_emb, modes)
        self.bot_l = self.create_mlp(ln_bot, -1)
        self.top_l = self.create_mlp(ln_top, len(ln_top) - 2)

    def apply_mlp(self, x, layers):
        return layers(x)

    def apply_emb(self, lS_o, lS_i, lS_w):
        ly = []
        for k, sparse_index_group_batch in enumerate(lS_i):
            sparse_offset_group_batch = lS_o[k]
            per_sample_weights = lS_w[k]
            E = self.emb_l[k]
            V = E(sparse_index_group_batch, sparse_offset_group_batch, per_sample_weights=per_sample_weights)
            ly.append(V)
        return ly

    def interact_features(self, x, ly):
        if self.arch_interaction_op == "dot":
            (batch_size, d) = x.shape
            T = torch.cat([x] + ly, dim=1).view((batch_size, -1, d))
            Z = torch.bmm(T, torch.transpose(T, 1, 2))
            _, ni, nj = Z.shape
            offset = 1 if self.arch_interaction_itself else 0
            li = torch.tensor([i for i in range(ni) for j in range(i + offset)])
            lj = torch.tensor([j for i in range(nj) for j in range(i + offset)])
            Zflat = Z[:, li, lj]
            R = torch.cat([x] + [Zflat], dim=1)
        elif self.arch_interaction_op == "cat":
            R = torch.cat([x] + ly, dim=1)
        else:
            sys.exit("ERROR: --arch-interaction-op=" + self.arch_interaction_op + " is not supported")
        return R

    def sequential_forward(self, dense_x, lS_o, lS_i, lS_w, ly=None):
        x = self.apply_mlp(dense_x, self.bot_l)
        if ly is None:
            ly = self.apply_emb(lS_o, lS_i, lS_w)
        z = self.interact_features(x, ly)
        p = self.apply_mlp(z, self.top_l)
        return p


def write_safetensors(path, tensors):
    """tensors: list of (name, tensor); F32 and U8 supported. Header padded to 8 bytes like the reference writer."""
    header, blobs, offset = {}, [], 0
    for name, t in tensors:
        t = t.detach().contiguous()
        dtype = {torch.float32: "F32", torch.uint8: "U8"}[t.dtype]
        data = t.numpy().tobytes()  # safetensors is little-endian, as is every machine this runs on
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    header["__metadata__"] = {"format": "pt", "generator": "tools/make_dlrm_fixtures.py"}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


CONFIGS = [
    # name, dense, bottom, top, interaction, itself, tables [(name, rows, dim, pooling)], weighted tables, seed
    dict(name="dot", dense=5, bottom=[8, 4], top=[8, 1], op="dot", itself=False,
         tables=[("C1", 20, 4, "sum"), ("C2", 30, 4, "sum"), ("C3", 50, 4, "sum")], weighted=[], seed=1),
    dict(name="dot-itself", dense=5, bottom=[8, 6], top=[10, 4, 1], op="dot", itself=True,
         tables=[("C1", 20, 6, "sum"), ("C2", 9, 6, "sum"), ("C3", 40, 6, "sum"), ("C4", 7, 6, "sum")], weighted=[], seed=2),
    dict(name="cat", dense=3, bottom=[6, 3], top=[7, 4, 1], op="cat", itself=False,
         tables=[("user_id", 25, 4, "sum"), ("item_id", 40, 6, "sum"), ("category", 8, 2, "sum")], weighted=[], seed=3),
    dict(name="multi-event", dense=4, bottom=[8, 4], top=[8, 3], op="dot", itself=False,
         tables=[("C1", 16, 4, "sum"), ("C2", 24, 4, "sum")], weighted=[], seed=4),
    dict(name="mean", dense=4, bottom=[6, 4], top=[6, 1], op="dot", itself=False,
         tables=[("C1", 16, 4, "mean"), ("C2", 24, 4, "sum"), ("C3", 12, 4, "mean")], weighted=[], seed=5),
    dict(name="weighted", dense=4, bottom=[6, 4], top=[6, 2], op="dot", itself=True,
         tables=[("C1", 16, 4, "sum"), ("C2", 24, 4, "sum"), ("C3", 12, 4, "sum")], weighted=["C1", "C3"], seed=6),
    dict(name="no-bottom", dense=4, bottom=[], top=[5, 1], op="dot", itself=False,
         tables=[("C1", 16, 4, "sum"), ("C2", 10, 4, "sum")], weighted=[], seed=7),
]

BATCH = 7


def make_requests(cfg, gen):
    """Random bags of 0..5 ids; sample 2 has an empty bag in every table, the last sample in the first."""
    dense = torch.round(torch.rand(BATCH, cfg["dense"], generator=gen) * 4000 - 1000) / 1000.0
    sparse, weights = {}, {}
    for t, (name, rows, _, _) in enumerate(cfg["tables"]):
        bags, wbags = [], []
        for b in range(BATCH):
            n = int(torch.randint(0, 6, (1,), generator=gen))
            if b == 2 or (t == 0 and b == BATCH - 1):
                n = 0
            elif n == 0:
                n = 1
            ids = torch.randint(0, rows, (n,), generator=gen).tolist()
            bags.append(ids)
            wbags.append([round(float(v), 3) for v in (torch.rand(n, generator=gen) * 2 - 0.5)])
        sparse[name] = bags
        if name in cfg["weighted"]:
            weights[name] = wbags
    return dense, sparse, weights


def csr(bags):
    ids = torch.tensor([i for bag in bags for i in bag], dtype=torch.int64)
    offsets = torch.tensor([0] + [len(b) for b in bags][:-1], dtype=torch.int64).cumsum(0)
    return ids, offsets


def quantized_pool(packed, bags, wbags, mode, bits):
    ids, offsets = csr(bags)
    psw = torch.tensor([w for bag in wbags for w in bag], dtype=torch.float32) if wbags is not None else None
    op = torch.ops.quantized.embedding_bag_byte_rowwise_offsets if bits == 8 else torch.ops.quantized.embedding_bag_4bit_rowwise_offsets
    pooled = op(packed, ids, offsets, False, 0, False, psw, None, False)
    if mode == "mean":
        counts = torch.tensor([max(1, len(b)) for b in bags], dtype=torch.float32).unsqueeze(1)
        pooled = pooled / counts
    return pooled


def build(cfg):
    torch.manual_seed(cfg["seed"])
    gen = torch.Generator().manual_seed(1000 + cfg["seed"])
    tables = cfg["tables"]
    ln_bot = [cfg["dense"]] + cfg["bottom"]
    bottom_out = ln_bot[-1]
    n = len(tables) + 1
    if cfg["op"] == "dot":
        pairs = n * (n + 1) // 2 if cfg["itself"] else n * (n - 1) // 2
        top_in = bottom_out + pairs
    else:
        top_in = bottom_out + sum(t[2] for t in tables)
    net = DLRM_Net([t[2] for t in tables], [t[1] for t in tables], ln_bot, [top_in] + cfg["top"],
                   cfg["op"], cfg["itself"], [t[3] for t in tables])
    net.eval()

    dense, sparse, weights = make_requests(cfg, gen)
    lS_i, lS_o, lS_w = [], [], []
    for name, _, _, _ in tables:
        ids, offsets = csr(sparse[name])
        lS_i.append(ids)
        lS_o.append(offsets)
        lS_w.append(torch.tensor([w for bag in weights[name] for w in bag], dtype=torch.float32) if name in weights else None)

    expected = {}
    with torch.no_grad():
        expected["fp32"] = net.sequential_forward(dense, lS_o, lS_i, lS_w)
        ly16 = []
        for k, (name, _, _, mode) in enumerate(tables):
            w16 = net.emb_l[k].weight.half().float()
            ly16.append(nn.functional.embedding_bag(lS_i[k], w16, lS_o[k], mode=mode, per_sample_weights=lS_w[k]))
        expected["fp16"] = net.sequential_forward(dense, lS_o, lS_i, lS_w, ly16)
        packed = {}
        for bits in (8, 4):
            if bits == 4 and any(t[2] % 2 for t in tables):
                continue  # the 4-bit prepack takes even widths only
            prepack = torch.ops.quantized.embedding_bag_byte_prepack if bits == 8 else torch.ops.quantized.embedding_bag_4bit_prepack
            packs = [prepack(net.emb_l[k].weight.data) for k in range(len(tables))]
            lyq = [quantized_pool(packs[k], sparse[name], weights.get(name), mode, bits) for k, (name, _, _, mode) in enumerate(tables)]
            expected[f"int{bits}"] = net.sequential_forward(dense, lS_o, lS_i, lS_w, lyq)
            packed[bits] = packs

    out = os.path.join(ROOT, cfg["name"])
    os.makedirs(out, exist_ok=True)
    state = list(net.state_dict().items())
    write_safetensors(os.path.join(out, "weights.safetensors"), state)
    for bits, packs in packed.items():
        qstate = [(k, packs[int(k.split(".")[1])] if k.startswith("emb_l.") else v) for k, v in state]
        write_safetensors(os.path.join(out, f"weights-int{bits}.safetensors"), qstate)

    model = {
        "kind": "dlrm",
        "dense_features": cfg["dense"],
        "bottom_mlp": cfg["bottom"],
        "top_mlp": cfg["top"],
        "interaction": cfg["op"],
        "interaction_itself": cfg["itself"],
        "tables": [{"name": name, "rows": rows, "dim": dim, "pooling": mode, "storage": "fp32"} for name, rows, dim, mode in tables],
        "weights": "weights.safetensors",
    }
    with open(os.path.join(out, "model.json"), "w") as f:
        json.dump(model, f, indent=2)
        f.write("\n")
    request = {"dense": dense.tolist(), "sparse": sparse}
    if weights:
        request["weights"] = weights
    with open(os.path.join(out, "request.json"), "w") as f:
        json.dump(request, f)
        f.write("\n")
    with open(os.path.join(out, "expected.json"), "w") as f:
        # repr of a float32 widened to double round-trips exactly back to the float32.
        json.dump({k: v.tolist() for k, v in expected.items()}, f)
        f.write("\n")
    print(cfg["name"], {k: [round(x, 4) for x in v[:, 0].tolist()] for k, v in expected.items()})


if __name__ == "__main__":
    assert sys.byteorder == "little"
    for cfg in CONFIGS:
        build(cfg)
