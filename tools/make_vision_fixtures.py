#!/usr/bin/python3
"""Regenerates tests/fixtures/vision/: small randomly initialised vision models as ONNX + PyTorch references.

Run with the Debian torch (1.13) and torchvision (0.14):
    env -u OPENBLAS_CORETYPE /usr/bin/python3 tools/make_vision_fixtures.py

Models (fixed seeds, random init, BatchNorm running statistics randomised so eval-mode BN is not
the identity), each written to tests/fixtures/vision/<name>/1/ (model.onnx, model.json, labels.txt):
  resnext        classification: ResNeXt bottlenecks with 3x3 convolutions of groups=32, input
                 [N,3,64,64], output "probs" [N,10] (softmax inside the graph).
  detector       detection: torchvision FasterRCNN (RPN, RoIAlign, two-layer box head, NMS all inside
                 the graph) over a ShuffleNet-style backbone (grouped 1x1 + depthwise 3x3 + channel
                 shuffle), one image [3,128,128] per run (torchvision's export takes a list of images;
                 the graph's input has no batch dimension), outputs boxes [K,4], labels [K], scores [K].
  video3d        video: a ResNeXt3D-style network (3D stem, 3D bottleneck with grouped 3x3x3 conv),
                 clip [N,3,8,32,32] (C,T,H,W), output "probs" [N,5].
  video-frames   video, frame-based: model.json only, {"frames": {"model": "resnext", "count": 4}}:
                 sample 4 of the clip's T frames (index floor(i*T/count)), run resnext on each,
                 average the class scores.

Next to each version directory, <name>/reference.json holds PyTorch's answers:
  {"cases": [{"name", "inputs": {input: tensor}, "outputs": {output: tensor}}]}
  tensor = {"datatype": "FP32"|"INT64", "shape": [...], "b64": base64 of the little-endian bytes}
so every float round-trips exactly. Cases include batch > 1 (resnext, video3d, video-frames) and
several images (detector, one run each).

resnext/preprocess.json: a PNG (test.png, 40x52 RGB, written by PIL) and the tensor the
classification preprocessing must produce from it: bilinear resize to 64x64 (F.interpolate,
align_corners=False, no antialias, i.e. pixel centres sampled), rounded back to 8 bits as an 8-bit
image pipeline does, /255, minus mean, over std, CHW. Plus resnext's output on that tensor.
"""
import base64
import json
import os
import shutil

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.ops import MultiScaleRoIAlign

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "vision")
OPSET = 13
CLS_SCALE = float(os.environ.get("CLS_SCALE", "60"))
DETS = int(os.environ.get("DETS", "10"))


def tensor_json(t):
    t = t.detach().contiguous()
    if t.dtype == torch.float32:
        dtype = "FP32"
    elif t.dtype == torch.int64:
        dtype = "INT64"
    else:
        raise ValueError(t.dtype)
    raw = t.numpy().astype(t.numpy().dtype.newbyteorder("<")).tobytes()
    return {"datatype": dtype, "shape": list(t.shape), "b64": base64.b64encode(raw).decode("ascii")}


def randomise_bn(model, gen):
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm2d, nn.BatchNorm3d)):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(n, generator=gen) * 0.5 + 0.75)
            m.weight.data.copy_(torch.rand(n, generator=gen) * 0.5 + 0.75)
            m.bias.data.copy_(torch.randn(n, generator=gen) * 0.1)


def write_version(name, spec, labels=None):
    d = os.path.join(ROOT, name, "1")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "model.json"), "w") as f:
        json.dump(spec, f, indent=2)
        f.write("\n")
    if labels is not None:
        with open(os.path.join(d, "labels.txt"), "w") as f:
            f.write("\n".join(labels) + "\n")
    return d


def write_reference(name, cases):
    with open(os.path.join(ROOT, name, "reference.json"), "w") as f:
        json.dump({"cases": cases}, f)


# ---------------------------------------------------------------- classification: ResNeXt (groups=32)

class ResNeXtBlock(nn.Module):
    """The ResNeXt bottleneck (Xie et al., 2017): 1x1 reduce, 3x3 grouped (cardinality 32), 1x1 expand."""

    def __init__(self, cin, width, cout, stride, groups=32):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, groups=groups, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return F.relu(y + (x if self.down is None else self.down(x)))


class TinyResNeXt(nn.Module):
    def __init__(self, classes=10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 32, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU())
        self.layer1 = ResNeXtBlock(32, 64, 64, 1)
        self.layer2 = ResNeXtBlock(64, 64, 128, 2)
        self.layer3 = ResNeXtBlock(128, 128, 128, 2)
        self.fc = nn.Linear(128, classes)

    def forward(self, image):
        x = self.layer3(self.layer2(self.layer1(self.stem(image))))
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return torch.softmax(self.fc(x) * 4.0, dim=1)


MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]


def make_resnext():
    torch.manual_seed(7)
    gen = torch.Generator().manual_seed(7)
    model = TinyResNeXt()
    randomise_bn(model, gen)
    model.eval()
    d = write_version("resnext", {
        "kind": "classification",
        "onnx": "model.onnx",
        "labels": "labels.txt",
        "preprocessing": {"resize": [64, 64], "mean": MEAN, "std": STD, "layout": "NCHW"},
        "batching": {"max_batch": 8, "max_delay_ms": 2},
    }, labels=[f"class-{i:02d}" for i in range(10)])
    example = torch.randn(1, 3, 64, 64, generator=gen)
    torch.onnx.export(model, (example,), os.path.join(d, "model.onnx"), opset_version=OPSET,
                      input_names=["image"], output_names=["probs"],
                      dynamic_axes={"image": {0: "batch"}, "probs": {0: "batch"}})
    cases = []
    with torch.no_grad():
        for case, batch in (("batch1", 1), ("batch3", 3)):
            x = torch.randn(batch, 3, 64, 64, generator=gen)
            cases.append({"name": case, "inputs": {"image": tensor_json(x)}, "outputs": {"probs": tensor_json(model(x))}})
    write_reference("resnext", cases)
    make_preprocess_reference(model, gen)
    return model


def make_preprocess_reference(model, gen):
    from PIL import Image
    h, w = 40, 52
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    noise = torch.rand(3, h, w, generator=gen) * 60
    pixels = torch.stack([xx * 255 / (w - 1), yy * 255 / (h - 1), (xx + yy) * 255 / (h + w - 2)]) * 0.7 + noise
    pixels = pixels.clamp(0, 255).round().to(torch.uint8)  # C,H,W
    png = os.path.join(ROOT, "resnext", "test.png")
    Image.fromarray(pixels.permute(1, 2, 0).numpy(), mode="RGB").save(png)
    resized = F.interpolate(pixels.float().unsqueeze(0), size=(64, 64), mode="bilinear", align_corners=False)
    resized = resized.round().clamp(0, 255) / 255.0
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    tensor = (resized - mean) / std
    with torch.no_grad():
        probs = model(tensor)
    with open(os.path.join(ROOT, "resnext", "preprocess.json"), "w") as f:
        json.dump({"image": "test.png", "tensor": tensor_json(tensor), "probs": tensor_json(probs)}, f)


# ---------------------------------------------------------------- detection: Faster-RCNN, ShuffleNet-style backbone

def channel_shuffle(x, groups):
    n, c, h, w = x.shape
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class ShuffleUnit(nn.Module):
    """A ShuffleNet (Zhang et al., 2018) unit, stride 2: grouped 1x1, channel shuffle, depthwise 3x3, grouped 1x1, concat with pooled input."""

    def __init__(self, cin, cout, groups=4):
        super().__init__()
        mid = cout // 2
        self.groups = groups
        self.g1 = nn.Conv2d(cin, mid, 1, groups=groups if cin % groups == 0 else 1, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.dw = nn.Conv2d(mid, mid, 3, stride=2, padding=1, groups=mid, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.g2 = nn.Conv2d(mid, cout - cin, 1, groups=groups, bias=False)
        self.bn3 = nn.BatchNorm2d(cout - cin)

    def forward(self, x):
        y = F.relu(self.bn1(self.g1(x)))
        y = channel_shuffle(y, self.groups)
        y = self.bn2(self.dw(y))
        y = self.bn3(self.g2(y))
        return F.relu(torch.cat([F.avg_pool2d(x, 3, stride=2, padding=1), y], 1))


class ShuffleBackbone(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 24, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(24), nn.ReLU())
        self.stage2 = ShuffleUnit(24, 48)
        self.stage3 = ShuffleUnit(48, 64)
        self.out_channels = 64  # stride 8

    def forward(self, x):
        return self.stage3(self.stage2(self.stem(x)))


def make_detector():
    torch.manual_seed(11)
    gen = torch.Generator().manual_seed(11)
    backbone = ShuffleBackbone()
    anchors = AnchorGenerator(sizes=((16, 32, 64),), aspect_ratios=((0.5, 1.0, 2.0),))
    pooler = MultiScaleRoIAlign(featmap_names=["0"], output_size=7, sampling_ratio=2)
    classes = 4  # background + 3
    model = FasterRCNN(
        backbone, num_classes=None, min_size=128, max_size=128,
        rpn_anchor_generator=anchors, box_roi_pool=pooler,
        box_head=TwoMLPHead(64 * 7 * 7, 64), box_predictor=FastRCNNPredictor(64, classes),
        rpn_pre_nms_top_n_test=100, rpn_post_nms_top_n_test=30,
        box_score_thresh=0.05, box_nms_thresh=0.5, box_detections_per_img=DETS)
    randomise_bn(model, gen)
    with torch.no_grad():
        # Spread the random class scores so the score threshold and top-k cut sit far from any
        # detection: the ONNX Runtime answer must keep the same set PyTorch keeps.
        model.roi_heads.box_predictor.cls_score.weight.mul_(CLS_SCALE)
        model.rpn.head.bbox_pred.weight.mul_(0.3)
        model.roi_heads.box_predictor.bbox_pred.weight.mul_(0.3)
    model.eval()
    d = write_version("detector", {
        "kind": "detection",
        "onnx": "model.onnx",
        "labels": "labels.txt",
        "preprocessing": {"resize": [128, 128], "mean": [0, 0, 0], "std": [1, 1, 1], "layout": "NCHW"},
        "batching": {"max_batch": 4, "max_delay_ms": 2},
    }, labels=["background", "cat", "dog", "bird"])
    example = torch.rand(3, 128, 128, generator=gen)
    torch.onnx.export(model, ([example],), os.path.join(d, "model.onnx"), opset_version=OPSET,
                      input_names=["image"], output_names=["boxes", "labels", "scores"],
                      dynamic_axes={"boxes": {0: "detections"}, "labels": {0: "detections"}, "scores": {0: "detections"}})
    cases = []
    with torch.no_grad():
        for i in range(3):
            x = smooth_image(gen, 128, 128)
            out = model([x])[0]
            s = out["scores"]
            gaps = (s[:-1] - s[1:]).min().item() if len(s) > 1 else 0.0
            print(f"detector case {i}: {len(s)} detections, smallest score gap {gaps:.2e}, scores {[round(v, 4) for v in s.tolist()]}")
            cases.append({"name": f"image{i}", "inputs": {"image": tensor_json(x)},
                          "outputs": {"boxes": tensor_json(out["boxes"]), "labels": tensor_json(out["labels"]), "scores": tensor_json(s)}})
    write_reference("detector", cases)


def smooth_image(gen, h, w):
    """Blobs rather than white noise, so the random detector sees some structure."""
    coarse = torch.rand(1, 3, h // 16, w // 16, generator=gen)
    return F.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)[0].contiguous()


# ---------------------------------------------------------------- video: ResNeXt3D-style

class Bottleneck3d(nn.Module):
    def __init__(self, cin, width, cout, stride, groups=8):
        super().__init__()
        self.conv1 = nn.Conv3d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm3d(width)
        self.conv2 = nn.Conv3d(width, width, 3, stride=stride, padding=1, groups=groups, bias=False)
        self.bn2 = nn.BatchNorm3d(width)
        self.conv3 = nn.Conv3d(width, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm3d(cout)
        self.down = nn.Sequential(nn.Conv3d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm3d(cout))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return F.relu(y + self.down(x))


class TinyVideoNet(nn.Module):
    def __init__(self, classes=5):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv3d(3, 16, (3, 5, 5), stride=(1, 2, 2), padding=(1, 2, 2), bias=False), nn.BatchNorm3d(16), nn.ReLU())
        self.layer1 = Bottleneck3d(16, 32, 32, 1)
        self.layer2 = Bottleneck3d(32, 32, 64, 2)
        self.fc = nn.Linear(64, classes)

    def forward(self, clip):
        x = self.layer2(self.layer1(self.stem(clip)))
        x = torch.flatten(F.adaptive_avg_pool3d(x, 1), 1)
        return torch.softmax(self.fc(x) * 4.0, dim=1)


def make_video3d():
    torch.manual_seed(13)
    gen = torch.Generator().manual_seed(13)
    model = TinyVideoNet()
    randomise_bn(model, gen)
    model.eval()
    d = write_version("video3d", {
        "kind": "video",
        "onnx": "model.onnx",
        "labels": "labels.txt",
        "batching": {"max_batch": 4, "max_delay_ms": 2},
    }, labels=["walk", "run", "jump", "swim", "climb"])
    example = torch.randn(1, 3, 8, 32, 32, generator=gen)
    torch.onnx.export(model, (example,), os.path.join(d, "model.onnx"), opset_version=OPSET,
                      input_names=["clip"], output_names=["probs"],
                      dynamic_axes={"clip": {0: "batch"}, "probs": {0: "batch"}})
    cases = []
    with torch.no_grad():
        for case, batch in (("batch1", 1), ("batch2", 2)):
            x = torch.randn(batch, 3, 8, 32, 32, generator=gen)
            cases.append({"name": case, "inputs": {"clip": tensor_json(x)}, "outputs": {"probs": tensor_json(model(x))}})
    write_reference("video3d", cases)


def make_video_frames(resnext):
    gen = torch.Generator().manual_seed(17)
    count = 4
    write_version("video-frames", {
        "kind": "video",
        "frames": {"model": "resnext", "count": count},
        "batching": {"max_batch": 2, "max_delay_ms": 2},
    })
    cases = []
    with torch.no_grad():
        for case, batch, frames in (("batch1", 1, 8), ("batch2", 2, 5)):
            clip = torch.randn(batch, 3, frames, 64, 64, generator=gen)
            picks = [(i * frames) // count for i in range(count)]
            scores = torch.stack([resnext(clip[:, :, t]) for t in picks]).mean(0)
            cases.append({"name": case, "inputs": {"clip": tensor_json(clip)}, "outputs": {"probs": tensor_json(scores)}})
    write_reference("video-frames", cases)


def main():
    if os.path.isdir(ROOT):
        shutil.rmtree(ROOT)
    os.makedirs(ROOT)
    torch.set_num_threads(1)
    resnext = make_resnext()
    make_detector()
    make_video3d()
    make_video_frames(resnext)
    total = 0
    for dirpath, _, files in os.walk(ROOT):
        for f in files:
            total += os.path.getsize(os.path.join(dirpath, f))
    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}, opset {OPSET}: {total / 1e6:.2f} MB in {ROOT}")


if __name__ == "__main__":
    main()
