"""Customer segmentation: preprocessing, algorithms, K choice, stable ids, profiles, plots."""
