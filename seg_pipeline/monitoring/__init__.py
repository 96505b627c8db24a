"""Monitoring of the fitted models: drift of their inputs and outputs since they were fitted."""
