"""The segmentation estimators, one module per family (scikit-learn's layout: private
implementation modules, public names here).

Every algorithm is wrapped in a small scikit-learn-style estimator (parameters only in
``__init__``, ``fit`` returns ``self``, learned attributes end in ``_``) whose ``predict`` gives a
segment label ``0..n_segments_-1`` to *any* row, so a stored model can label each day's
customers.  The density methods (HDBSCAN, DBSCAN) put the points they call noise into a segment
of their own (the last label, ``noise_label_``) instead of ``-1``.

Their input is the already preprocessed matrix (see
:mod:`seg_pipeline.segmentation.preprocess`); every random step is seeded by ``random_state``.
Which estimator a configuration uses, and how K is chosen, is
:func:`seg_pipeline.segmentation.algorithms.fit_segmenter`.
"""

from seg_pipeline.segmentation.estimators._base import nearest_center
from seg_pipeline.segmentation.estimators._density import DensitySegmenter
from seg_pipeline.segmentation.estimators._gmm import GMMSegmenter
from seg_pipeline.segmentation.estimators._kmeans import KMeansSegmenter
from seg_pipeline.segmentation.estimators._som import SOMSegmenter
from seg_pipeline.segmentation.estimators._ward import WardSegmenter

__all__ = [
    "DensitySegmenter",
    "GMMSegmenter",
    "KMeansSegmenter",
    "SOMSegmenter",
    "WardSegmenter",
    "nearest_center",
]
