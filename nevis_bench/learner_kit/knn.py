"""One k-nearest-neighbour scorer for every learner that needs one (``knn``, ``dynamic_knn``'s selection).

Queries are processed in chunks of ``chunk`` rows on the references' device, with squared
Euclidean distances from one matrix product (``|q|^2 - 2 q.r + |r|^2``, float32), so memory is
``chunk x N_ref`` whatever the split sizes: 100,000 references and ImageNet-sized query sets run in
bounded memory on a GPU or a CPU. ``torch.cdist`` would do the same arithmetic, but it
materialises the whole query-by-reference matrix; scikit-learn's ``KNeighborsClassifier`` runs on
the CPU only. Ties in distance go to the lower reference index (exactly, also at the k-th distance:
see ``_nearest``), so results do not depend on the chunk size.

Scores: single-label, the fraction of the ``k`` neighbours voting for each class; multi-label, the
mean of the neighbours' multi-hot labels (a probability per class).

FLOPs (analytic, since the kernels are a matrix product and a top-k): ``2 x N_query x N_ref x D``
for the distances, what the reference's convention counts for a dense kNN.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def knn_flops(num_queries: int, num_references: int, dim: int) -> int:
    return 2 * int(num_queries) * int(num_references) * int(dim)


def _nearest(distances: torch.Tensor, k: int) -> torch.Tensor:
    """Indices (rows, k) of the ``k`` smallest distances per row, ordered by (distance, index).

    ``topk`` breaks ties arbitrarily, so its ``k + 1`` smallest are taken: a row whose ``k``-th and
    ``(k+1)``-th distances differ has exactly its ``k`` nearest as candidates, ordered by a stable
    sort; the rare rows with a tie across the ``k``-th place go through :func:`_nearest_exact`."""
    n = distances.shape[1]
    nearest = torch.topk(distances, min(k + 1, n), dim=1, largest=False, sorted=True)
    candidates, values = nearest.indices[:, :k], nearest.values[:, :k]
    order = torch.sort(candidates, dim=1).indices
    candidates, values = torch.gather(candidates, 1, order), torch.gather(values, 1, order)
    neighbours = torch.gather(candidates, 1, torch.sort(values, dim=1, stable=True).indices)
    if n > k:
        tied = nearest.values[:, k] == nearest.values[:, k - 1]
        if bool(tied.any()):  # predict-time only (no_grad), one read per chunk
            rows = torch.nonzero(tied).flatten()
            neighbours[rows] = _nearest_exact(distances[rows], k)
    return neighbours


def _nearest_exact(distances: torch.Tensor, k: int) -> torch.Tensor:
    """As :func:`_nearest` for rows with ties at the ``k``-th distance: every reference closer than
    it, then those at exactly that distance with the lowest indices until there are ``k``."""
    kth = torch.topk(distances, k, dim=1, largest=False, sorted=True).values[:, -1:]
    closer = distances < kth
    at_kth = distances == kth
    room = k - closer.sum(1, keepdim=True)
    chosen = closer | (at_kth & (torch.cumsum(at_kth, dim=1) <= room))
    index = torch.arange(distances.shape[1], device=distances.device).expand_as(distances)
    sentinel = torch.iinfo(torch.int64).max
    candidates = torch.topk(torch.where(chosen, index, sentinel), k, dim=1, largest=False, sorted=True).values
    by_distance = torch.sort(torch.gather(distances, 1, candidates), dim=1, stable=True).indices
    return torch.gather(candidates, 1, by_distance)


@torch.no_grad()
def knn_scores(references: torch.Tensor, reference_labels: torch.Tensor, queries: torch.Tensor, k: int,
               num_classes: int, multi_label: bool, chunk: int = 1024) -> tuple[torch.Tensor, int]:
    """(scores (N_query, num_classes) float32 on the references' device, distance FLOPs).

    ``reference_labels``: class indices (N_ref,) or multi-hot (N_ref, num_classes)."""
    device = references.device
    references = references.float()
    k = min(int(k), len(references))
    ref_sq = references.pow(2).sum(1)
    labels = reference_labels.to(device)
    votes = labels.float() if multi_label else F.one_hot(labels.long(), num_classes).float()
    out = []
    for start in range(0, len(queries), chunk):
        q = queries[start:start + chunk].to(device).float()
        distances = q.pow(2).sum(1, keepdim=True) - 2.0 * q @ references.T + ref_sq
        neighbours = _nearest(distances, k)
        out.append(votes[neighbours].mean(1))
    scores = torch.cat(out) if out else torch.zeros(0, num_classes, device=device)
    return scores, knn_flops(len(queries), len(references), references.shape[1])
