"""k-means (scikit-learn) on a bounded sample of embeddings, and what it is measured by."""

from __future__ import annotations

import numpy as np


#: Frames whose model input holds at least HEAVY_RATIO x the heat of a typical one-person frame
#: (the HEAVY_PERCENTILE-th percentile of the frames with someone in view) are "heavy": two
#: people, nearly always. k-means fitted on all frames at once gives them a cluster or two only
#: when the training happens to find them (measured: `following` scored 0.67 with one training
#: seed, 0.99 with another), so they get a share of the clusters of their own.
HEAVY_RATIO = 1.4
#: At the 30th percentile a lone person standing at the door line (~1.3x a walker's heat)
#: was heavy: such frames shared a cluster with pairs, and a lingerer flickered into a
#: two-people state (`--train` lingering 0.967; docs/model.md, "Third round"). The 40th keeps
#: them with the one-person frames.
HEAVY_PERCENTILE = 40
HEAVY_SHARE = 0.3
MIN_HEAVY_FRAMES = 20  # per heavy cluster
NONEMPTY_HEAT = 1.0


def heavy_threshold(heat: np.ndarray) -> float:
    """The input heat from which a frame is "heavy" (see HEAVY_RATIO); inf when nobody is in view."""
    seen = heat[heat >= NONEMPTY_HEAT]
    if len(seen) == 0:
        return float("inf")
    return HEAVY_RATIO * float(np.percentile(seen, HEAVY_PERCENTILE))


def fit_centroids(embeddings: np.ndarray, clusters: int, seed: int, heat=None) -> np.ndarray:
    """(n, latent) -> (K, latent) centroids. One thread so the result does not depend on the CPU count.

    With ``heat`` (the sum of each frame's model input) and 6+ clusters, the heavy frames
    (two people) get ``HEAVY_SHARE`` of the clusters, fitted on them alone, and the rest the
    others - when there are enough heavy frames to fill them."""
    if heat is not None and clusters >= 6:
        heavy = np.asarray(heat) >= heavy_threshold(np.asarray(heat))
        k_heavy = max(2, round(HEAVY_SHARE * clusters))
        if heavy.sum() >= MIN_HEAVY_FRAMES * k_heavy and (~heavy).sum() >= MIN_HEAVY_FRAMES * (clusters - k_heavy):
            return np.concatenate([_kmeans(embeddings[~heavy], clusters - k_heavy, seed),
                                   _kmeans(embeddings[heavy], k_heavy, seed)])
    return _kmeans(embeddings, clusters, seed)


def _kmeans(embeddings: np.ndarray, clusters: int, seed: int) -> np.ndarray:
    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        kmeans = KMeans(n_clusters=clusters, n_init=10, random_state=seed).fit(embeddings.astype(np.float64))
    return kmeans.cluster_centers_.astype(np.float32)


def nearest(embeddings: np.ndarray, centroids: np.ndarray) -> tuple:
    """(states int64 (n,), squared distances (n, K)) - the same rule the ONNX graph applies."""
    distances = ((embeddings[:, None, :] - centroids[None, :, :]) ** 2).sum(axis=2)
    return np.argmin(distances, axis=1).astype(np.int64), distances


def separation_score(embeddings: np.ndarray, states: np.ndarray, seed: int, sample: int = 2000) -> float:
    """Silhouette score on a sample (-1..1; above ~0.5 the clusters are well apart).

    The sample is small on purpose: silhouette needs all pairwise distances (n^2 memory).
    """
    from sklearn.metrics import silhouette_score

    if len(np.unique(states)) < 2 or len(states) < 3:
        return float("nan")
    return float(silhouette_score(embeddings, states, sample_size=min(sample, len(states)), random_state=seed))
