"""Family ``multi_label``: which of the task's labels are present (multi-hot, >= 1 positive).

Default style: every label is an object class of the object bank (``_objects``; the Pascal tasks
share their classes with the single-label object tasks); one to three objects are composited at
random positions and scales on an object background or, for scene-annotation tasks, on a rendered
scene. Style ``faces`` (CelebA, BIWI): every label is a face attribute drawn by the face renderer
(glasses, hat, beard, smile, hair colours, ...; attributes past the drawn ones are coloured badges
at a label-specific place). Style ``xray`` (NIH chest X-ray): every label is a finding of the x-ray
lesion bank, drawn on a chest image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import _faces, _objects, _scenes, _xray
from ._core import F32, Sprites, composite, crops, grid, hsv_to_rgb, make_rng, random_affine, to_channels

SCENE_TASKS = {"iaprtc_12", "sun_attribute"}
FACE_ATTRIBUTES = (
    "glasses", "hat", "beard", "smiling", "moustache", "bangs", "blond", "black_hair", "grey_hair", "pale",
    "lipstick", "earrings", "mouth_open", "eyes_closed", "bald", "necktie", "rosy_cheeks", "long_hair",
    "big_nose", "bushy_brows",
)


def sample_multi_hot(rng, n: int, num_classes: int, max_pos: int = 3) -> np.ndarray:
    k = 1 + (rng.random(n) < 0.5).astype(int) + (rng.random(n) < 0.2).astype(int)
    k = np.minimum(k, min(max_pos, num_classes))
    order = np.argsort(rng.random((n, num_classes)), axis=1)
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(num_classes)[None].repeat(n, 0), axis=1)
    return (ranks < k[:, None]).astype(np.float32)


def _face_params(p: dict, y: np.ndarray, rng):
    """Override identity / pose parameters so that attribute ``j`` shows iff ``y[:, j]``."""
    n, c = y.shape
    on = lambda name: (y[:, FACE_ATTRIBUTES.index(name)] > 0.5) if FACE_ATTRIBUTES.index(name) < c else np.zeros(n, bool)  # noqa: E731
    p["glasses"] = on("glasses").astype(float)
    p["hat"] = on("hat").astype(float)
    p["beard"] = on("beard").astype(float)
    p["moustache"] = on("moustache").astype(float)
    p["smile"] = np.where(on("smiling"), rng.uniform(0.7, 1.0, n), rng.uniform(-0.2, 0.15, n))
    p["bangs"] = on("bangs").astype(float)
    brown = hsv_to_rgb(rng.uniform(0.04, 0.09, n), rng.uniform(0.4, 0.7, n), rng.uniform(0.25, 0.45, n))
    hair = np.where(on("blond")[:, None], hsv_to_rgb(0.12, 0.55, rng.uniform(0.75, 0.95, n)), brown)
    hair = np.where(on("black_hair")[:, None], hsv_to_rgb(0.0, 0.0, rng.uniform(0.03, 0.1, n)), hair)
    hair = np.where(on("grey_hair")[:, None], hsv_to_rgb(0.0, 0.0, rng.uniform(0.6, 0.8, n)), hair)
    p["hair"] = hair
    p["skin"] = np.where(on("pale")[:, None], hsv_to_rgb(0.07, 0.15, 0.97), hsv_to_rgb(rng.uniform(0.03, 0.09, n), rng.uniform(0.35, 0.6, n), rng.uniform(0.35, 0.8, n)))
    p["lips"] = np.where(on("lipstick")[:, None], hsv_to_rgb(0.98, 0.85, 0.75), p["skin"] * 0.75)
    p["earrings"] = on("earrings").astype(float)
    p["open"] = np.where(on("mouth_open"), rng.uniform(0.6, 1.0, n), 0.0)
    p["eyes_open"] = np.where(on("eyes_closed"), 0.15, 1.0)
    p["hair_len"] = np.where(on("long_hair"), rng.uniform(0.5, 1.0, n), 0.0)
    bald = on("bald")
    p["hairline"] = np.where(bald, 0.0, p["hairline"])
    p["hair_vol"] = np.where(bald, 0.0, p["hair_vol"])
    p["hair"] = np.where(bald[:, None], p["skin"] * 0.95, p["hair"])
    p["tie"] = on("necktie").astype(float)
    p["cheeks"] = on("rosy_cheeks").astype(float)
    p["nose_w"] = np.where(on("big_nose"), 0.07, np.minimum(p["nose_w"], 0.045))
    p["brow_t"] = np.where(on("bushy_brows"), 0.04, np.minimum(p["brow_t"], 0.02))
    return p


@dataclass
class MultiLabelTask:
    image_size: int
    channels: int
    seed: int
    num_classes: int
    style: str
    sprites: Sprites | None = None
    backgrounds: np.ndarray | None = None
    scene_layouts: bool = False
    lesions: tuple = ()

    def sample_labels(self, rng, n):
        return sample_multi_hot(rng, n, self.num_classes)

    def render(self, y, rng, split, **_):
        n, s = len(y), self.image_size
        if self.style == "faces":
            bank = _faces.identity_bank(self.seed)
            p = _faces.take(bank, rng.integers(0, _faces.BANK, n))
            p.update(_faces.pose(rng, n, yaw=0.4, roll=0.15, scale=(0.9, 1.05), shift=0.05, light=0.6, expr=0.0))
            p = _face_params(p, y, rng)
            img = _faces.render_faces(p, s, crops(rng, self.backgrounds, n, s))
            extra = len(FACE_ATTRIBUTES)
            if self.num_classes > extra:  # badges for the attributes past the drawn ones
                yy, xx = grid(s)
                for j in range(extra, self.num_classes):
                    r = make_rng("badge", self.seed, j)
                    bx, by = r.uniform(-0.85, 0.85, 2)
                    colour = hsv_to_rgb(r.random(), 0.8, 0.9)
                    m = (np.maximum(np.abs(xx - bx), np.abs(yy - by)) < 0.07)[None] & (y[:, j] > 0.5)[:, None, None]
                    img = np.where(m[..., None], colour, img)
        elif self.style == "xray":
            img, g = _xray.chest(rng, n, s)
            for j, kind in enumerate(self.lesions):
                idx = np.nonzero(y[:, j] > 0.5)[0]
                _xray.add_lesion(img, g, kind, rng, idx, s, rng.uniform(0.6, 1.0, len(idx)))
            img = np.clip(img + rng.normal(0, 0.02, img.shape).astype(F32), 0, 1)[..., None]
            img = np.repeat(img, 3, axis=-1)
        else:
            if self.scene_layouts:
                b = _scenes.scene_bank(self.seed)
                k = rng.integers(0, _scenes.BANK, n)
                img = _scenes.render_scenes({key: v[k] for key, v in b.items()}, rng, s)
            else:
                img = crops(rng, self.backgrounds, n, s)
            order = np.argsort(-y + rng.random(y.shape) * 0.5, axis=1)  # positives first, random order
            npos = y.sum(axis=1).astype(int)
            for slot in range(int(npos.max())):
                idx = np.nonzero(npos > slot)[0]
                lab = order[idx, slot]
                a = random_affine(rng, len(idx), rot=0.3, scale=(0.4, 0.65), shift=0.45, aspect=0.1, flip=True)
                rgba = self.sprites.sample(lab * _objects.POSES + rng.integers(0, _objects.POSES, len(idx)), a, s)
                sub = img[idx]
                composite(sub, rgba)
                img[idx] = sub
            img = img + rng.normal(0, 0.02, img.shape).astype(F32)
        return to_channels(np.clip(img, 0, 1).astype(F32), self.channels)


def make_task(facts, num_classes: int, image_size: int, seed: int) -> MultiLabelTask:
    if facts.style == "faces":
        return MultiLabelTask(image_size, facts.channels, seed, num_classes, "faces", backgrounds=_objects.background_bank(seed, image_size))
    if facts.style == "xray":
        lesions = tuple(_xray.LESIONS[j % len(_xray.LESIONS)] for j in range(num_classes))
        return MultiLabelTask(image_size, facts.channels, seed, num_classes, "xray", lesions=lesions)
    ids = _objects.bank_classes(seed, facts.key, num_classes)
    sprites = Sprites(_objects.protos_for(seed, ids, image_size), fill=0.0)
    return MultiLabelTask(
        image_size, facts.channels, seed, num_classes, "objects", sprites=sprites,
        backgrounds=_objects.background_bank(seed, image_size), scene_layouts=facts.key in SCENE_TASKS,
    )
