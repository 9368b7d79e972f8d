"""A 2-D map of embeddings for a scatter plot coloured by genre: which genres an embedding
separates, at a glance, before any classifier is trained.

scikit-learn's t-SNE (van der Maaten & Hinton 2008) on the first principal components of
the standardised embeddings (the usual recipe: PCA first speeds t-SNE up and drops noise
dimensions), seeded, so the same embeddings always give the same map; `pca` keeps the
first two components instead (linear, distances comparable across the map). Labels are
never used: the colours come afterwards.
"""

from __future__ import annotations

import numpy as np
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE
from sklearn.preprocessing import StandardScaler

METHODS = ("tsne", "pca")
PCA_COMPONENTS = 50
PERPLEXITY = 30.0


def embedding_map(x: np.ndarray, method: str = "tsne", seed: int = 0) -> np.ndarray:
    """(n, 2) coordinates of the (n, dim) embeddings `x`: each dimension standardised,
    reduced to at most 50 principal components, then t-SNE (perplexity 30, or (n - 1) / 3
    for fewer than 91 points, since t-SNE needs perplexity below n; PCA initialisation),
    or for `pca` the first two components."""
    if method not in METHODS:
        raise ValueError(f"method {method!r}: allowed values are {', '.join(METHODS)}")
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or len(x) < 3:
        raise ValueError(f"need at least 3 embeddings as an (n, dim) array, got {x.shape}")
    scaled = StandardScaler().fit_transform(x)
    components = PCA(n_components=min(PCA_COMPONENTS, *scaled.shape),
                     random_state=seed).fit_transform(scaled)
    if method == "pca" or components.shape[1] < 2:
        return np.pad(components, ((0, 0), (0, max(0, 2 - components.shape[1]))))[:, :2]
    perplexity = min(PERPLEXITY, (len(x) - 1) / 3)
    return TSNE(n_components=2, perplexity=perplexity, init="pca",
                random_state=seed).fit_transform(components)
