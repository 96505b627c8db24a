"""Fitted models: the one store every model is saved in and loaded from."""
