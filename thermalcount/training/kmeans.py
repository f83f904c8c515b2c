"""k-means (scikit-learn) on a bounded sample of embeddings, and what it is measured by."""

from __future__ import annotations

import numpy as np


def fit_centroids(embeddings: np.ndarray, clusters: int, seed: int) -> np.ndarray:
    """(n, latent) -> (K, latent) centroids. One thread so the result does not depend on the CPU count.

    All frames are clustered together. (An earlier version gave "heavy" frames - more heat
    than 1.4x a typical one-person frame - clusters of their own, taken for two people; a
    real person in mid-view carries 2.6x the heat of the same person at the edge, so those
    clusters fired in the middle of lone walkers and counted them twice. docs/model.md.)"""
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
