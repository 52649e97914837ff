"""Family ``face``: identities with fixed facial geometry; pose, lighting and expression vary.

The identity bank (family-level) fixes per identity the head shape, skin and hair colour, hair
style, eye / brow / nose / mouth / ear geometry, and facial hair and glasses. Faces are drawn with
vectorised implicit shapes (anti-aliased ellipses in face coordinates), so every image can have its
own yaw (features slide and foreshorten, the far ear hides), roll, scale, shift, expression (smile,
open mouth, eye closure, raised brows) and directional light on an ellipsoidal head. Tasks pick
identities (LFW-A uses LFW's) and a capture style: dark studio, uniform backgrounds, profile-to-
frontal sweeps (UMIST), harsh lighting (Yale B), cluttered backgrounds (LFW), animal faces.
The multi-label family reuses :func:`render_faces` for attribute tasks.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from ._core import F32, col, coverage, crops, grid, hsv_to_rgb, make_rng, to_channels

BANK = 1000
PARENT = {"lfwa": "lfw"}


@functools.lru_cache(maxsize=4)
def identity_bank(seed: int) -> dict:
    rng = make_rng("face-bank", seed)
    n = BANK
    u = lambda lo, hi: rng.uniform(lo, hi, n)  # noqa: E731
    hair_v = np.where(rng.random(n) < 0.6, u(0.05, 0.25), u(0.25, 0.8))
    return {
        "face_w": u(0.36, 0.47), "face_h": u(0.47, 0.58), "taper": u(0.0, 0.35),
        "skin": hsv_to_rgb(u(0.03, 0.09), u(0.25, 0.5), u(0.45, 0.88)),
        "hair": hsv_to_rgb(u(0.02, 0.12), u(0.15, 0.8), hair_v),
        "hairline": u(0.45, 0.8), "hair_vol": u(0.02, 0.16), "hair_len": np.where(rng.random(n) < 0.4, u(0.3, 1.0), u(0.0, 0.15)),
        "bangs": (rng.random(n) < 0.25).astype(np.float64),
        "eye_y": u(-0.16, -0.04), "eye_dx": u(0.13, 0.19), "eye_rx": u(0.05, 0.075), "eye_ry": u(0.022, 0.038),
        "iris": hsv_to_rgb(u(0.05, 0.6), u(0.3, 0.8), u(0.1, 0.6)),
        "brow_t": u(0.012, 0.032), "brow_tilt": u(-0.25, 0.25), "brow_h": u(0.05, 0.09),
        "nose_len": u(0.08, 0.16), "nose_w": u(0.025, 0.055),
        "mouth_y": u(0.18, 0.28), "mouth_w": u(0.08, 0.15), "lip_t": u(0.012, 0.028),
        "lips": hsv_to_rgb(u(0.95, 1.02), u(0.3, 0.7), u(0.35, 0.8)),
        "ear": u(0.05, 0.085), "beard": (rng.random(n) < 0.18).astype(np.float64),
        "moustache": (rng.random(n) < 0.15).astype(np.float64), "glasses": (rng.random(n) < 0.1).astype(np.float64),
        "hat": np.zeros(n), "cheeks": np.zeros(n), "earrings": np.zeros(n), "tie": np.zeros(n),
        "animal": np.zeros(n),
    }


def take(bank: dict, ids) -> dict:
    return {k: np.asarray(v)[ids] for k, v in bank.items()}


def pose(rng, n, yaw=0.3, roll=0.15, scale=(0.9, 1.15), shift=0.07, light=0.8, light_el=0.4, ambient=(0.35, 0.7), expr=0.5):
    """Per-image pose / lighting / expression parameters."""
    yaw_v = rng.uniform(-yaw, yaw, n) if np.isscalar(yaw) else rng.uniform(yaw[0], yaw[1], n)
    return {
        "yaw": yaw_v, "roll": rng.uniform(-roll, roll, n), "scale": rng.uniform(*scale, n),
        "tx": rng.uniform(-shift, shift, n), "ty": rng.uniform(-shift, shift, n),
        "light_az": rng.uniform(-light, light, n), "light_el": rng.uniform(-light_el, light_el, n),
        "ambient": rng.uniform(*ambient, n),
        "smile": rng.uniform(-0.3, 1.0, n) * expr, "open": np.maximum(rng.uniform(-0.5, 1.0, n), 0) * expr,
        "eyes_open": 1.0 - np.maximum(rng.uniform(-1.0, 1.0, n), 0) * expr * 0.8, "brow_raise": rng.uniform(-1, 1, n) * expr,
        "clothes": hsv_to_rgb(rng.random(n), rng.uniform(0.1, 0.8, n), rng.uniform(0.15, 0.9, n)),
    }


def render_faces(p: dict, size: int, background: np.ndarray) -> np.ndarray:
    """Draw faces described by per-image parameter arrays ``p`` over ``background`` (N, S, S, 3)."""
    n = len(p["face_w"])
    yy, xx = grid(size)
    c_roll, s_roll = np.cos(p["roll"]), np.sin(p["roll"])
    x0 = (xx[None] - col(p["tx"])) / col(p["scale"])
    y0 = (yy[None] - col(p["ty"]) - F32(0.08)) / col(p["scale"])
    X = col(c_roll) * x0 + col(s_roll) * y0
    Y = -col(s_roll) * x0 + col(c_roll) * y0
    sy = np.sin(p["yaw"])
    cy_ = np.cos(p["yaw"])
    fw, fh = p["face_w"], p["face_h"]
    img = background.copy()

    def cov(d, soft=1.0):
        return coverage(d, size, soft)

    def ell(cx, cy, rx, ry):
        return (np.sqrt(((X - col(cx)) / col(rx)) ** 2 + ((Y - col(cy)) / col(ry)) ** 2) - 1.0) * col(np.minimum(rx, ry))

    def paint(mask, rgb):
        nonlocal img
        img += (np.asarray(rgb, F32)[:, None, None, :] - img) * mask[..., None]

    animal = p["animal"] > 0.5
    skin = np.where(animal[:, None], p["skin"] * np.asarray([1.0, 0.85, 0.7], F32), p["skin"]).astype(F32)
    # shoulders / clothes, neck
    paint(cov(ell(-sy * 0.05, fh + 0.45, fw * 2.1, 0.42)), p["clothes"])
    paint(cov(np.maximum(np.abs(X + col(sy * 0.03)) - col(fw * 0.45), Y - col(fh + 0.2))) * (Y > col(fh * 0.3)), p["skin"] * 0.8)
    # hair behind the head (long hair)
    long_m = cov(ell(-sy * 0.06, fh * 0.1 + p["hair_len"] * 0.25, fw * 1.18, fh * (1.05 + p["hair_len"] * 0.5))) * col(p["hair_len"] > 0.2)
    paint(long_m, p["hair"])
    # ears (animal: on top)
    for side in (-1.0, 1.0):
        ex = side * fw * cy_ - sy * 0.05
        hide = np.clip(1.0 - np.maximum(side * sy, 0) * 2.5, 0, 1)
        m = cov(ell(ex, p["eye_y"] + 0.04, p["ear"] * 0.7, p["ear"] * 1.3)) * col(hide) * col(~animal)
        paint(m, p["skin"] * 0.9)
        # animal ears: triangles on top
        ax, ay = side * fw * 0.6 * cy_ - sy * 0.1, -fh * 0.9
        tri = np.maximum(Y - col(ay + 0.05), np.abs(X - col(ax)) - (Y - col(ay - 0.25)) * 0.55)
        paint(cov(tri) * col(animal), skin * 0.8)
    # head with a tapering chin
    dy = Y
    taper = 1.0 - col(p["taper"]) * np.clip(dy / col(fh), 0, 1)
    head = (np.sqrt((X / (col(fw) * taper)) ** 2 + (dy / col(fh)) ** 2) - 1.0) * col(np.minimum(fw, fh))
    head_m = cov(head)
    paint(head_m, skin)
    # hair on top of the head
    hl = -fh * (1.0 - p["hairline"] * 0.45)
    top = cov(ell(-sy * 0.05, -fh * 0.12, fw * 1.1 + p["hair_vol"] * 0.4, fh * 1.0 + p["hair_vol"]))
    line = cov(Y - col(hl + p["bangs"] * 0.25 * fh) - F32(0.25) * (X + col(sy * 0.1)) ** 2)
    paint(top * line * col(~animal & (p["hat"] < 0.5)), p["hair"])
    # face features slide with yaw
    feat_x = lambda base, depth: base * cy_ + depth * sy  # noqa: E731
    eye_open = np.clip(p["eyes_open"], 0.15, 1.0)
    for side in (-1.0, 1.0):
        ex = feat_x(side * p["eye_dx"], fw * 0.55)
        fore = np.clip(1.0 - np.maximum(side * sy, 0) * 0.9, 0.25, 1.0)
        erx = p["eye_rx"] * fore * np.where(animal, 0.8, 1.0)
        ery = p["eye_ry"] * eye_open * np.where(animal, 1.6, 1.0)
        white = np.where(animal[:, None], p["iris"] * 0.5 + np.asarray([0.45, 0.42, 0.1], F32), np.full((n, 3), 0.93, F32))
        paint(cov(ell(ex, p["eye_y"], erx, ery)), white)
        paint(cov(ell(ex + sy * 0.01, p["eye_y"], np.minimum(erx, ery) * np.where(animal, 0.4, 0.85), ery * 0.9)), p["iris"] * np.where(animal, 0.15, 1.0)[:, None])
        # brows
        bx = ex
        by = p["eye_y"] - p["brow_h"] - p["brow_raise"] * 0.02
        bdx, bdy = X - col(bx), Y - col(by)
        tilt = col(side * p["brow_tilt"])
        rbx = bdx * np.cos(tilt) + bdy * np.sin(tilt)
        rby = -bdx * np.sin(tilt) + bdy * np.cos(tilt)
        brow = (np.sqrt((rbx / col(erx * 1.3)) ** 2 + (rby / col(p["brow_t"])) ** 2) - 1.0) * col(p["brow_t"])
        paint(cov(brow) * col(~animal), p["hair"] * 0.7)
        if p["glasses"].any():
            ring = np.abs(ell(ex, p["eye_y"], erx * 1.7, p["eye_ry"] * 2.4)) - F32(0.012)
            paint(cov(ring) * col(p["glasses"] > 0.5), np.full((n, 3), 0.08, F32))
        if p["cheeks"].any():
            paint(cov(ell(ex, p["eye_y"] + 0.13, erx * 1.1, 0.04), 2.5) * F32(0.5) * col(p["cheeks"] > 0.5), np.tile([[0.9, 0.35, 0.4]], (n, 1)))
        if p["earrings"].any():
            ex2 = side * fw * cy_ - sy * 0.05
            paint(cov(ell(ex2, p["eye_y"] + 0.12, 0.025, 0.025)) * col(p["earrings"] > 0.5), np.tile([[0.95, 0.8, 0.2]], (n, 1)))
    if p["glasses"].any():
        bridge = np.maximum(np.abs(X - col(feat_x(0.0, fw * 0.6))) - col(p["eye_dx"] * 0.5), np.abs(Y - col(p["eye_y"])) - 0.008)
        paint(cov(bridge) * col(p["glasses"] > 0.5), np.full((n, 3), 0.08, F32))
    # nose: a soft shadow on the lit side and nostrils
    nx = feat_x(0.0, fw * 0.9)
    ny = p["eye_y"] + p["nose_len"]
    shadow = cov(ell(nx - 0.02, (p["eye_y"] + ny) / 2 + 0.02, p["nose_w"] * 0.6, p["nose_len"] * 0.55), 2.5)
    paint(shadow * F32(0.35) * col(~animal), skin * 0.6)
    snout = cov(ell(nx, ny + 0.02, p["nose_w"] * 2.6, p["nose_len"] * 0.6)) * col(animal)
    paint(snout, np.clip(skin * 1.3 + 0.1, 0, 1))
    for side in (-1.0, 1.0):
        paint(cov(ell(nx + side * p["nose_w"] * 0.6, ny, p["nose_w"] * 0.35 * np.where(animal, 2.0, 1.0), 0.012 * np.where(animal, 2.0, 1.0))), skin * 0.35)
    # mouth: a bent ellipse; smile bends it up, open mouths show a dark inside
    mx = feat_x(0.0, fw * 0.75)
    my = p["mouth_y"]
    mdx = X - col(mx)
    bent = Y - col(my) + col(p["smile"] * 2.2) * mdx ** 2
    lip = (np.sqrt((mdx / col(p["mouth_w"])) ** 2 + (bent / col(p["lip_t"] + p["open"] * 0.04)) ** 2) - 1) * col(p["lip_t"])
    paint(cov(lip), p["lips"] * np.where(animal, 0.3, 1.0)[:, None])
    inner = (np.sqrt((mdx / col(p["mouth_w"] * 0.8)) ** 2 + (bent / col(p["open"] * 0.035 + 1e-3)) ** 2) - 1) * col(p["lip_t"])
    paint(cov(inner) * col(p["open"] > 0.05), np.full((n, 3), 0.15, F32))
    # facial hair
    if p["moustache"].any():
        mo = (np.sqrt((mdx / col(p["mouth_w"] * 1.05)) ** 2 + ((bent + col(p["lip_t"] + 0.025)) / 0.018) ** 2) - 1) * 0.018
        paint(cov(mo) * col(p["moustache"] > 0.5), p["hair"] * 0.8)
    if p["beard"].any():
        beard = np.maximum(head, -(Y - col(my - 0.03)))
        paint(cov(beard, 2.0) * F32(0.85) * col(p["beard"] > 0.5), p["hair"] * 0.8)
    if p["hat"].any():
        hat = np.maximum(ell(-sy * 0.05, -fh * 0.75, fw * 1.15, fh * 0.5), Y - col(-fh * 0.55))
        brim = ell(-sy * 0.05, -fh * 0.55, fw * 1.45, 0.05)
        paint(cov(np.minimum(hat, brim)) * col(p["hat"] > 0.5), p["clothes"][:, ::-1])
    if p["tie"].any():
        tie = np.maximum(np.abs(X) - (Y - col(fh + 0.1)) * 0.25 - 0.03, np.abs(Y - col(fh + 0.35)) - 0.28)
        paint(cov(tie) * col(p["tie"] > 0.5), np.tile([[0.6, 0.1, 0.15]], (n, 1)))
    # light on an ellipsoidal head
    nxh = np.clip(X / col(fw), -1, 1)
    nyh = np.clip(Y / col(fh), -1, 1)
    nzh = np.sqrt(np.maximum(1.0 - nxh**2 - nyh**2, 0.0))
    la, le = p["light_az"] + p["yaw"] * 0, p["light_el"]
    lam = np.maximum(nxh * col(np.sin(la) * np.cos(le)) - nyh * col(np.sin(le)) + nzh * col(np.cos(la) * np.cos(le)), 0.0)
    amb = col(p["ambient"])
    shade = amb + (1.0 - amb) * lam * F32(1.15)
    img *= (F32(1.0) + (shade - F32(1.0)) * np.maximum(head_m, 0.0))[..., None]
    return img


@dataclass
class FaceTask:
    image_size: int
    channels: int
    seed: int
    ids: np.ndarray
    style: dict
    backgrounds: np.ndarray | None

    def render(self, labels, rng, split, **_):
        n, s, st = len(labels), self.image_size, self.style
        p = take(identity_bank(self.seed), self.ids[labels])
        p.update(pose(rng, n, **st["pose"]))
        if st.get("animal"):
            p["animal"] = np.ones(n)
            for k in ("hair_len", "beard", "moustache", "glasses"):
                p[k] = np.zeros(n)
            p["clothes"] = p["skin"] * np.asarray([0.8, 0.68, 0.56], F32)
        if st.get("glasses_vary"):
            p["glasses"] = np.where(rng.random(n) < 0.25, 1.0 - p["glasses"], p["glasses"])
        if self.backgrounds is not None:
            bg = crops(rng, self.backgrounds, n, s)
        else:
            lo, hi = st["bg"]
            tint = hsv_to_rgb(st.get("bg_hue", 0.6), st.get("bg_sat", 0.1), 1.0)
            bg = np.broadcast_to((rng.uniform(lo, hi, n)[:, None] * tint)[:, None, None, :], (n, s, s, 3)).astype(F32)
        img = render_faces(p, s, bg)
        img = img * col(rng.uniform(0.75, 1.2, n))[..., None] + col(rng.normal(0, 0.05, n))[..., None]
        img += rng.normal(0, st.get("noise", 0.03), img.shape).astype(F32)
        return to_channels(np.clip(img, 0, 1), self.channels)


STYLES = {
    "olivetti_face": dict(pose=dict(yaw=0.5, roll=0.2, scale=(1.0, 1.35), shift=0.1, expr=0.6), bg=(0.05, 0.3), glasses_vary=True),
    "aberdeen": dict(pose=dict(yaw=0.3, roll=0.1, scale=(0.9, 1.15), shift=0.07, light=0.9), bg=(0.5, 0.9), bg_hue=0.58, bg_sat=0.3),
    "umist": dict(pose=dict(yaw=(-1.3, 0.2), roll=0.1, scale=(0.9, 1.15), shift=0.07, expr=0.3), bg=(0.05, 0.35)),
    "cmu_amp_expression": dict(pose=dict(yaw=0.15, roll=0.1, scale=(1.05, 1.35), shift=0.07, expr=1.0), bg=(0.15, 0.4)),
    "extended_yaleb": dict(pose=dict(yaw=0.12, roll=0.06, scale=(1.0, 1.2), shift=0.05, light=1.4, light_el=0.7, ambient=(0.0, 0.3), expr=0.2), bg=(0.0, 0.2)),
    "lfw": dict(pose=dict(yaw=0.55, roll=0.25, scale=(0.8, 1.1), shift=0.09, light=0.9), clutter=True, noise=0.03),
    "lfwa": dict(pose=dict(yaw=0.5, roll=0.05, scale=(0.9, 1.1), shift=0.03, light=0.9), clutter=True, noise=0.03),
    "animalweb": dict(pose=dict(yaw=0.5, roll=0.3, scale=(0.8, 1.1), shift=0.08, light=0.8), clutter=True, animal=True),
}
DEFAULT = dict(pose=dict(), bg=(0.2, 0.8))


def make_task(facts, num_classes: int, image_size: int, seed: int) -> FaceTask:
    from ._objects import background_bank

    parent = PARENT.get(facts.key, facts.key)
    ids = make_rng("face-classes", seed, parent).permutation(BANK)[:num_classes]
    if num_classes > BANK:
        ids = np.arange(num_classes) % BANK
    st = STYLES.get(facts.key, DEFAULT)
    bgs = background_bank(seed, image_size) if st.get("clutter") else None
    return FaceTask(image_size, facts.channels, seed, ids, st, bgs)
