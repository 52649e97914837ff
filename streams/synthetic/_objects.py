"""Family ``object``: objects composed of parts on backgrounds; plus the shared object bank and the
background bank that other families (multi-label, signs, faces, counting) reuse.

The object bank is family-level: ``GROUPS`` body plans (body shape + limbs / wings / heads at fixed
anchors) with ``MEMBERS`` colour / pattern / proportion variants each, all derived from the data seed.
A task picks classes from the bank (fine-grained tasks pick members of a few body plans; generic
tasks pick across plans), so the classes of, e.g., ImageNet, CIFAR and Caltech overlap and share
parts. Per image the class prototype (one of a few poses) is warped (rotation, scale, shift, flip),
recoloured slightly, composited on a random background crop and noised.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace

import numpy as np

from . import _parts
from ._core import (
    F32, Sprites, affine, band_noise, box_blur3, col, composite, crops, elastic_field, grid, hsv_to_rgb,
    lowpass_noise, make_rng, random_affine, to_channels,
)

GROUPS, MEMBERS = 48, 25
BANK_SIZE = GROUPS * MEMBERS
POSES = 3

# Tasks whose classes are subsets of another task's classes (as in the real datasets).
PARENT = {
    "food_101_n": "food_101", "tiny_imagenet": "imagenet", "cifar_10": "cifar_100", "caltech101": "caltech256",
    "pascal_voc2005": "pascal_voc2006", "pascal_2012": "pascal_2007", "domainnet_real": "imagenet",
    "office_caltech": "caltech256", "stl10": "cifar_100",
}
CLUTTERED = {
    "pascal_voc2005", "pascal_voc2006", "ig02", "ms_coco", "interact", "ppmi", "caltech_camera_traps",
    "uiuc_cars", "voc_actions", "pascal_2007", "pascal_2012",
}
DOMAIN_MIX = {"pacs": ("photo", "art", "cartoon", "sketch"), "office_caltech": ("photo", "plain", "lowres", "photo")}


def object_proto_size(image_size: int) -> int:
    return max(16, int(round(image_size * 1.5 / 2)) * 2)


# ------------------------------------------------------------------------------------ the bank


ARCHETYPES = (
    "bird", "vehicle", "aircraft", "animal", "flower", "food", "butterfly", "fish", "bottle",
    "furniture", "house", "tree", "blob",
)
FINE_ARCHETYPE = {
    "cub_200": "bird", "stanford_cars": "vehicle", "fgvc_aircraft": "aircraft", "stanford_dogs": "animal",
    "oxford_iiit_pets": "animal", "oxford_flowers": "flower", "oxford_flowers_102": "flower",
    "food_101": "food", "food_101_n": "food", "butterflies": "butterfly",
}


def _archetype_parts(kind: str, rng):
    """A body plan: list of (Part, role); roles: body (patterned), dark, light, accent, black, white."""
    P, u = _parts.Part, rng.uniform
    out = []
    if kind == "bird":
        bx, by = u(0.26, 0.36), u(0.16, 0.22)
        tilt = u(-0.5, -0.1)
        out += [(P(-0.38, 0.12, u(0.18, 0.3), u(0.05, 0.09), tilt - 0.3, p=1.6), "dark")]  # tail
        out += [(P(-0.05, 0.22 + by * 0.6, 0.015, u(0.12, 0.18), 0.15), "black"), (P(0.07, 0.22 + by * 0.6, 0.015, 0.15, 0.1), "black")]
        out += [(P(0.0, 0.05, bx, by, tilt), "body")]
        out += [(P(-0.05, 0.02, bx * 0.7, by * 0.55, tilt + 0.2), "accent")]  # wing
        hx, hy, hr = 0.26, -0.16, u(0.1, 0.14)
        out += [(P(hx, hy, hr, hr), "body"), (P(hx + hr + 0.05, hy + 0.02, u(0.05, 0.1), 0.035, 0.0, n=3), "black")]
        out += [(P(hx + 0.04, hy - 0.02, 0.025, 0.025), "black")]
    elif kind == "vehicle":
        w, h = u(0.5, 0.62), u(0.12, 0.2)
        out += [(P(0.0, 0.05, w, h, p=6.0), "body"), (P(u(-0.15, 0.05), -h - 0.05, w * u(0.45, 0.7), u(0.1, 0.16), p=5.0, taper=-u(0.3, 0.8)), "body")]
        out += [(P(-0.05, -h - 0.05, w * 0.42, 0.07, p=6.0), "light")]
        r = u(0.1, 0.15)
        out += [(P(-w * 0.6, 0.05 + h, r, r), "black"), (P(w * 0.6, 0.05 + h, r, r), "black")]
        out += [(P(-w * 0.6, 0.05 + h, r * 0.45, r * 0.45), "light"), (P(w * 0.6, 0.05 + h, r * 0.45, r * 0.45), "light")]
    elif kind == "aircraft":
        L = u(0.6, 0.8)
        sweep = u(0.0, 0.6)
        out += [(P(0.12, 0.0, u(0.1, 0.16), u(0.55, 0.8), sweep, p=3.0, taper=u(-0.6, 0.0)), "accent")]
        out += [(P(0.12, 0.0, u(0.1, 0.16), u(0.55, 0.8), -sweep, p=3.0, taper=u(-0.6, 0.0)), "accent")]
        out += [(P(0.0, 0.0, L, u(0.06, 0.1), 0.0, p=2.5), "body")]
        out += [(P(-L + 0.1, 0.0, 0.06, u(0.15, 0.25), sweep, p=3.0), "accent"), (P(-L + 0.1, 0.0, 0.06, 0.2, -sweep, p=3.0), "accent")]
    elif kind == "animal":
        bx, by = u(0.3, 0.42), u(0.15, 0.22)
        legl = u(0.14, 0.26)
        for x in (-bx * 0.7, -bx * 0.5, bx * 0.5, bx * 0.7):
            out += [(P(x, by * 0.7 + legl * 0.6, u(0.035, 0.06), legl, 0.0, p=3.0), "dark" if x in (-bx * 0.5, bx * 0.5) else "body")]
        out += [(P(-bx - 0.05, -0.05, u(0.12, 0.25), 0.04, u(0.3, 1.2)), "body")]  # tail
        out += [(P(0.0, 0.0, bx, by, 0.0), "body")]
        hr = u(0.11, 0.16)
        hx, hy = bx + hr * 0.5, -by - hr * 0.3
        out += [(P(hx - 0.05, hy - hr, u(0.04, 0.07), u(0.06, 0.12), u(-0.5, 0.3), n=3), "dark")]  # ear
        out += [(P(hx, hy, hr, hr * u(0.85, 1.1)), "body"), (P(hx + hr * 0.9, hy + 0.04, u(0.05, 0.1), 0.05), "light")]
        out += [(P(hx + hr * 0.3, hy - 0.03, 0.022, 0.022), "black")]
    elif kind == "flower":
        k = int(rng.integers(4, 10))
        rr, pw = u(0.25, 0.42), u(0.08, 0.2)
        out += [(P(0.0, 0.0, 0.9 * rr, 0.9 * rr, 0.0, n=k) if rng.random() < 0.2 else P(0.0, 0.0, 0.01, 0.01), "dark")]
        for i in range(k):
            a = 2 * np.pi * i / k
            out += [(P(rr * 0.55 * np.cos(a), rr * 0.55 * np.sin(a), rr * 0.6, pw, a, p=u(1.6, 2.5)), "body")]
        out += [(P(0.0, 0.0, u(0.08, 0.16), 0.12), "accent")]
    elif kind == "food":
        out += [(P(0.0, 0.05, 0.8, u(0.45, 0.62)), "white")]
        for _ in range(int(rng.integers(2, 6))):
            out += [(_parts.random_blob(rng, u(-0.4, 0.4), u(-0.2, 0.3), r=u(0.12, 0.25), harmonics=3, roughness=0.25), rng.choice(["body", "accent", "dark"]))]
    elif kind == "butterfly":
        a1, a2 = u(0.25, 0.5), u(0.15, 0.35)
        for s in (-1, 1):
            out += [(P(s * 0.33, -0.18, u(0.28, 0.36), u(0.22, 0.3), s * a1, p=u(1.8, 2.6)), "body")]
            out += [(P(s * 0.25, 0.25, u(0.18, 0.24), u(0.16, 0.22), -s * a2), "accent")]
            out += [(P(s * 0.12, -0.58, 0.012, 0.15, s * 0.35), "black")]
        out += [(P(0.0, 0.0, 0.04, u(0.35, 0.45)), "black")]
    elif kind == "fish":
        out += [(P(-0.55, 0.0, u(0.15, 0.22), u(0.18, 0.28), 0.0, n=3, taper=0.0), "accent")]
        out += [(P(-0.05, -0.22, u(0.12, 0.2), 0.08, -0.4, n=3), "accent")]
        out += [(P(0.0, 0.0, u(0.45, 0.55), u(0.18, 0.3), 0.0, taper=u(-0.3, 0.3)), "body")]
        out += [(P(0.32, -0.05, 0.04, 0.04), "black")]
    elif kind == "bottle":
        w, h = u(0.16, 0.3), u(0.5, 0.65)
        out += [(P(0.0, 0.2, w, h, 0.0, p=u(3.0, 8.0), taper=u(-0.2, 0.3)), "body"), (P(0.0, 0.2 - h - 0.08, w * 0.4, 0.15, p=4.0), "body")]
        out += [(P(0.0, 0.2 - h - 0.22, w * 0.45, 0.05, p=8.0), "accent"), (P(0.0, 0.25, w * 0.9, h * 0.3, p=8.0), "light")]
        if rng.random() < 0.5:
            out += [(P(w + 0.1, 0.2, 0.12, h * 0.35), "body"), (P(w + 0.1, 0.2, 0.06, h * 0.25), "cut")]
    elif kind == "furniture":
        w = u(0.35, 0.55)
        out += [(P(0.0, -0.35, w * 0.9, u(0.22, 0.35), p=6.0), "body")]  # back
        for x in (-w * 0.85, w * 0.85):
            out += [(P(x, 0.35, 0.04, u(0.25, 0.35), p=6.0), "dark")]
        out += [(P(0.0, 0.05, w, 0.08, p=8.0), "accent")]
    elif kind == "house":
        w, h = u(0.4, 0.6), u(0.28, 0.42)
        out += [(P(0.0, 0.3, w, h, p=10.0), "body"), (P(0.0, 0.3 - h - 0.2, w * 1.25, u(0.25, 0.35), 0.0, n=3), "accent")]
        out += [(P(u(-0.2, 0.2), 0.3 + h * 0.45, 0.09, h * 0.5, p=10.0), "dark")]
        out += [(P(-w * 0.55, 0.2, 0.1, 0.08, p=10.0), "light"), (P(w * 0.55, 0.2, 0.1, 0.08, p=10.0), "light")]
    elif kind == "tree":
        out += [(P(0.0, 0.45, u(0.06, 0.12), 0.4, p=5.0, taper=0.3), "dark")]
        for _ in range(int(rng.integers(1, 4))):
            out += [(_parts.random_blob(rng, u(-0.2, 0.2), u(-0.35, -0.05), r=u(0.28, 0.45), harmonics=5, roughness=0.12), "body")]
    else:
        body = _parts.random_blob(rng, 0.0, 0.0, r=0.42, harmonics=3, roughness=0.16, aspect=0.45)
        out += [(body, "body")]
        for _ in range(int(rng.integers(1, 4))):
            a = float(rng.uniform(0, 2 * np.pi))
            size = float(rng.uniform(0.12, 0.3))
            ax, ay = body.rx * math.cos(a) * (0.75 + 0.55 * size), body.ry * math.sin(a) * (0.75 + 0.55 * size)
            part = replace(_parts.random_blob(rng, ax, ay, r=size, harmonics=2, roughness=0.15, aspect=0.7), angle=math.atan2(ay, ax))
            out += [(part, "accent")]
            if rng.random() < 0.5:
                out += [(replace(part, cx=-part.cx, angle=math.pi - part.angle), "accent")]
    return out


@functools.lru_cache(maxsize=None)
def group_plan(seed: int, g: int):
    rng = make_rng("object-group", seed, g)
    kind = ARCHETYPES[g % len(ARCHETYPES)]
    plan = _archetype_parts(kind, rng)
    return kind, tuple(p for p, _ in plan), tuple(r for _, r in plan), float(rng.random())


@functools.lru_cache(maxsize=None)
def class_spec(seed: int, cid: int):
    kind, parts, roles, hue = group_plan(seed, cid // MEMBERS)
    rng = make_rng("object-class", seed, cid)
    parts = tuple(_parts.jitter_part(p, rng, pos=0.03, size=0.14, angle=0.12, coef=0.05) for p in parts)
    body = hsv_to_rgb(hue + rng.normal(0, 0.12), rng.uniform(0.3, 0.9), rng.uniform(0.35, 0.95))
    accent = hsv_to_rgb(rng.random(), rng.uniform(0.3, 0.9), rng.uniform(0.25, 0.95))
    dark = F32(rng.uniform(0.3, 0.6))
    light = F32(0.55) + F32(0.45) * hsv_to_rgb(rng.random(), 0.2, 1.0) * F32(rng.uniform(0.6, 1.0))
    black = hsv_to_rgb(0.0, 0.0, rng.uniform(0.05, 0.2))
    white = hsv_to_rgb(rng.random(), rng.uniform(0.0, 0.15), rng.uniform(0.85, 1.0))
    morphs = []  # one colour morph per pose: classes come in several colours, as cars and flowers do
    for v in range(POSES):
        if v == 0:
            b, a = body, accent
        elif v == 1 or rng.random() < 0.5:
            b = np.clip(body * F32(rng.uniform(0.7, 1.25)) + F32(0.06) * rng.normal(0, 1, 3).astype(F32), 0, 1)
            a = np.clip(accent * F32(rng.uniform(0.8, 1.2)), 0, 1)
        else:
            b = hsv_to_rgb(rng.random(), rng.uniform(0.2, 0.9), rng.uniform(0.3, 0.95))
            a = accent
        morphs.append({"body": b, "accent": a, "dark": b * dark, "light": light, "black": black, "white": white, "cut": np.zeros(3, F32)})
    pattern = int(rng.integers(0, 4))  # none, stripes, spots, two-tone
    pat_rgb = hsv_to_rgb(rng.random(), rng.uniform(0.2, 0.9), rng.uniform(0.1, 0.95))
    pat = (pattern, float(rng.uniform(2.5, 6.0)), float(rng.uniform(0, np.pi)), pat_rgb)
    return parts, roles, tuple(morphs), pat


@functools.lru_cache(maxsize=1600)
def class_protos(seed: int, cid: int, size: int) -> np.ndarray:
    """``POSES`` RGBA prototypes (POSES, size, size, 4) uint8 of one bank class."""
    parts, roles, morphs, (pattern, freq, pang, pat_rgb) = class_spec(seed, cid)
    rng = make_rng("object-poses", seed, cid)
    yy, xx = grid(size)
    t = np.cos(pang) * xx + np.sin(pang) * yy
    if pattern == 1:
        pm = np.clip(np.sin(2 * np.pi * freq * t) * 3.0, -1, 1) * 0.5 + 0.5
    elif pattern == 2:
        uu = np.cos(pang) * yy - np.sin(pang) * xx
        pm = np.clip((np.sin(2 * np.pi * freq * t) * np.sin(2 * np.pi * freq * uu) - 0.45) * 5.0, 0, 1)
    elif pattern == 3:
        pm = np.clip(t * 4.0, 0, 1)
    else:
        pm = np.zeros_like(t)
    out = np.zeros((POSES, size, size, 4), dtype=F32)
    for v in range(POSES):
        colours = morphs[v]
        patterned = colours["body"][None, None] * (1 - pm[..., None]) + pat_rgb[None, None] * pm[..., None]
        ps = list(parts) if v == 0 else [_parts.jitter_part(p, rng, pos=0.025, size=0.04, angle=0.15, coef=0.0) for p in parts]
        ps = _parts.fit_parts(ps, margin=0.95)
        rgb = np.zeros((size, size, 3), dtype=F32)
        alpha = np.zeros((size, size), dtype=F32)
        for p, role in zip(ps, roles):
            m = _parts.mask([replace(p, value=1.0)], size)
            if role == "cut":
                alpha = alpha * (1 - m)
                continue
            c = patterned if role == "body" else colours[role][None, None]
            rgb = rgb * (1 - m[..., None]) + c * m[..., None]
            alpha = np.maximum(alpha, m)
        shade = (1.08 - 0.18 * (xx + yy) * 0.5 - 0.1 * (xx * xx + yy * yy))[..., None]
        out[v, ..., :3] = np.clip(rgb * shade, 0, 1)
        out[v, ..., 3] = alpha
    res = np.clip(np.rint(out * 255), 0, 255).astype(np.uint8)
    res.setflags(write=False)
    return res


def bank_classes(seed: int, key: str, num_classes: int) -> np.ndarray:
    """Class ids of the bank for a task; child tasks (``PARENT``) take a prefix of their parent's list."""
    parent = PARENT.get(key, key)
    rng = make_rng("object-classes", seed, parent)
    if parent in FINE_ARCHETYPE:
        a = ARCHETYPES.index(FINE_ARCHETYPE[parent])
        groups = np.arange(a, GROUPS, len(ARCHETYPES))
        groups = np.concatenate([rng.permutation(groups), rng.permutation(np.setdiff1d(np.arange(GROUPS), groups))])
        members = np.stack([rng.permutation(MEMBERS) for _ in range(GROUPS)])
        ids = (groups[:, None] * MEMBERS + members[groups]).reshape(-1)
    else:
        ids = rng.permutation(BANK_SIZE)
    return ids[:num_classes]


def protos_for(seed: int, ids, image_size: int) -> np.ndarray:
    size = object_proto_size(image_size)
    arr = np.stack([class_protos(seed, int(c), size) for c in ids]).astype(F32) / F32(255.0)
    return arr.reshape(-1, size, size, 4)


# ------------------------------------------------------------------------------------ backgrounds


@functools.lru_cache(maxsize=16)
def background_bank(seed: int, image_size: int, count: int = 48) -> np.ndarray:
    """``count`` background images (count, 2S, 2S, 3): outdoor, indoor, clutter and plain kinds."""
    size = 2 * image_size
    rng = make_rng("backgrounds", seed, image_size)
    yy, xx = grid(size)
    out = np.empty((count, size, size, 3), dtype=F32)
    tex = band_noise(rng, count, size, rng.uniform(4, 14, count), 0.6)
    low = lowpass_noise(rng, 3 * count, size, 3.0).reshape(count, 3, size, size)
    for k in range(count):
        kind = k % 4
        if kind == 0:  # outdoor: sky, wavy horizon, textured ground
            h = rng.uniform(-0.4, 0.4) + 0.15 * low[k, 0] * 0.5
            sky_top = hsv_to_rgb(rng.uniform(0.5, 0.68), rng.uniform(0.1, 0.6), rng.uniform(0.6, 1.0))
            sky_bot = hsv_to_rgb(rng.uniform(0.05, 0.65), rng.uniform(0.0, 0.3), rng.uniform(0.7, 1.0))
            ground = hsv_to_rgb(rng.uniform(0.05, 0.35), rng.uniform(0.25, 0.7), rng.uniform(0.25, 0.65))
            t = ((yy + 1) / 2)[..., None]
            sky = sky_top * (1 - t) + sky_bot * t
            g = ground * (1 + 0.25 * tex[k])[..., None]
            m = np.clip((yy - h) * size * 0.5, 0, 1)[..., None]
            img = sky * (1 - m) + g * m
        elif kind == 1:  # indoor: wall, floor, furniture rectangles
            wall = hsv_to_rgb(rng.random(), rng.uniform(0.05, 0.4), rng.uniform(0.5, 0.95))
            floor = hsv_to_rgb(rng.uniform(0.02, 0.12), rng.uniform(0.2, 0.6), rng.uniform(0.25, 0.6))
            f = rng.uniform(0.2, 0.6)
            img = np.where((yy > f)[..., None], floor * (1 + 0.15 * tex[k])[..., None], wall * (1 + 0.05 * low[k, 1])[..., None])
            for _ in range(int(rng.integers(2, 5))):
                x0, y0 = rng.uniform(-1, 0.7, 2)
                w, hh = rng.uniform(0.15, 0.6, 2)
                m = ((xx > x0) & (xx < x0 + w) & (yy > y0) & (yy < y0 + hh))[..., None]
                img = np.where(m, hsv_to_rgb(rng.random(), rng.uniform(0.1, 0.6), rng.uniform(0.2, 0.9)), img)
        elif kind == 2:  # clutter: smooth colour noise and blobs
            base = hsv_to_rgb(rng.random(), rng.uniform(0.1, 0.5), rng.uniform(0.35, 0.8))
            img = base + 0.12 * np.stack([low[k, 0], low[k, 1], low[k, 2]], axis=-1)
            for _ in range(int(rng.integers(3, 8))):
                cx, cy = rng.uniform(-1, 1, 2)
                rx, ry = rng.uniform(0.08, 0.35, 2)
                m = (((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 < 1)[..., None]
                c = hsv_to_rgb(rng.random(), rng.uniform(0.1, 0.6), rng.uniform(0.25, 0.9))
                img = np.where(m, img * 0.4 + c * 0.6, img)
        else:  # plain studio background with a gentle gradient
            c = hsv_to_rgb(rng.random(), rng.uniform(0.0, 0.25), rng.uniform(0.6, 1.0))
            gdir = rng.uniform(0, 2 * np.pi)
            img = c * (1 + 0.12 * (np.cos(gdir) * xx + np.sin(gdir) * yy))[..., None] + 0.03 * low[k, 0][..., None]
        out[k] = np.clip(img, 0, 1)
    out = box_blur3(out)
    out.setflags(write=False)
    return out


# ------------------------------------------------------------------------------------ the task


@dataclass
class ObjectTask:
    image_size: int
    channels: int
    sprites: Sprites
    backgrounds: np.ndarray
    scale: tuple
    shift: float
    rot: float
    noise: float
    occlude: float
    bg_kinds: tuple  # which background kinds (index % 4) may be used
    domains: tuple = ("photo",)
    distract: float = 0.3

    def render(self, labels, rng, split, **_):
        n, s = len(labels), self.image_size
        pose = rng.integers(0, POSES, n)
        a = random_affine(rng, n, rot=self.rot, scale=self.scale, shift=self.shift, shear=0.1, aspect=0.15, flip=True)
        rgba = self.sprites.sample(labels * POSES + pose, a, s, elastic_field(rng, n, s, 0.035))
        rgba[..., :3] = colour_jitter(rng, rgba[..., :3], 0.15)
        kinds = np.asarray(self.bg_kinds)
        bank = self.backgrounds
        sel = np.concatenate([np.arange(k, len(bank), 4) for k in kinds])
        img = crops(rng, bank[np.sort(sel)], n, s)
        img = img * rng.uniform(0.75, 1.1, (n, 1, 1, 1)).astype(F32)
        # a small distractor object (another class of the task) behind, off-centre, in some images
        dis = np.nonzero(rng.random(n) < self.distract)[0]
        if len(dis):
            other = rng.integers(0, self.sprites.shape[0], len(dis))
            side = np.where(rng.random(len(dis)) < 0.5, -1.0, 1.0)
            ad = affine(rng.uniform(-0.5, 0.5, len(dis)), rng.uniform(0.25, 0.4, len(dis)), side * rng.uniform(0.6, 0.85, len(dis)),
                        rng.uniform(-0.7, 0.7, len(dis)))
            drgba = self.sprites.sample(other, ad, s)
            drgba[..., 3] *= F32(0.9)
            sub = img[dis]
            composite(sub, drgba)
            img[dis] = sub
        composite(img, rgba)
        if self.occlude > 0:
            yy, xx = grid(s)
            on = rng.random(n) < self.occlude
            cx, cy = rng.uniform(-1, 1, (2, n))
            rx, ry = rng.uniform(0.15, 0.4, (2, n))
            m = ((((xx - col(cx)) / col(rx)) ** 2 + ((yy - col(cy)) / col(ry)) ** 2) < 1) & col(on).astype(bool)
            c = hsv_to_rgb(rng.random(n), rng.uniform(0.1, 0.6, n), rng.uniform(0.2, 0.9, n))[:, None, None, :]
            img = np.where(m[..., None], c, img)
        if len(self.domains) > 1:
            img = apply_domains(img, rng.integers(0, len(self.domains), n), self.domains, rng)
        img += rng.normal(0.0, self.noise, img.shape).astype(F32)
        return to_channels(np.clip(img, 0, 1), self.channels)


def colour_jitter(rng, rgb: np.ndarray, amount: float) -> np.ndarray:
    """Per-image random channel mixing (identity + noise) and brightness gain."""
    n = rgb.shape[0]
    m = (np.eye(3, dtype=F32)[None] + rng.normal(0, amount, (n, 3, 3)).astype(F32)) * rng.uniform(0.8, 1.15, (n, 1, 1)).astype(F32)
    out = np.empty_like(rgb)
    for c in range(3):
        out[..., c] = (rgb[..., 0] * col(m[:, c, 0]) + rgb[..., 1] * col(m[:, c, 1]) + rgb[..., 2] * col(m[:, c, 2]))
    return out


def apply_domains(img, which, domains, rng):
    """Per-image depiction style: photo (as is), art (posterised, saturated), cartoon (flat colours with
    dark outlines), sketch (grey pencil edges), plain / lowres (webcam-like blur)."""
    out = img.copy()
    lum = img.mean(axis=-1, keepdims=True)
    gy = np.abs(np.diff(lum, axis=1, append=lum[:, -1:]))
    gx = np.abs(np.diff(lum, axis=2, append=lum[:, :, -1:]))
    edge = np.clip((gx + gy) * 4.0, 0, 1)
    for d, name in enumerate(domains):
        m = which == d
        if not m.any() or name in ("photo", "plain"):
            continue
        x = img[m]
        if name == "art":
            sat = x + (x - x.mean(axis=-1, keepdims=True)) * 0.8
            x = np.round(np.clip(sat, 0, 1) * 5) / 5 * 0.85 + 0.1 * band_noise(rng, len(x), x.shape[1], 6.0, 0.5)[..., None]
        elif name == "cartoon":
            x = np.round(x * 3) / 3 * (1 - edge[m])
        elif name == "sketch":
            x = np.repeat(1 - edge[m] * 1.3, 3, axis=-1)
        elif name == "lowres":
            x = box_blur3(box_blur3(x)) * 0.9 + 0.05
        out[m] = np.clip(x, 0, 1)
    return out


def make_task(facts, num_classes: int, image_size: int, seed: int) -> ObjectTask:
    key = facts.key
    trng = make_rng("object-style", seed, key)
    ids = bank_classes(seed, key, num_classes)
    sprites = Sprites(protos_for(seed, ids, image_size), fill=0.0)
    cluttered = key in CLUTTERED
    if cluttered:
        scale, shift, occlude, kinds = (0.4, 0.75), 0.3, 0.25, (0, 1, 2)
    else:
        scale, shift, occlude, kinds = (0.5, 0.95), 0.18, 0.12, tuple(sorted(trng.choice(4, size=int(trng.integers(2, 5)), replace=False)))
    if key in ("caltech101", "caltech256", "caltech_categories", "office_caltech"):
        kinds = (3, 2)
    return ObjectTask(
        image_size=image_size, channels=facts.channels, sprites=sprites,
        backgrounds=background_bank(seed, image_size), scale=scale, shift=shift,
        rot=float(trng.uniform(0.1, 0.45)), noise=float(trng.uniform(0.015, 0.04)), occlude=occlude,
        bg_kinds=tuple(int(k) for k in kinds), domains=DOMAIN_MIX.get(key, ("photo",)),
    )
