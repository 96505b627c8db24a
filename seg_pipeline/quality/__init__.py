"""Data-quality gates: Great Expectations suites (``expectations/``) run as Dagster asset checks.

Importing this package does not import ``great_expectations``.
"""
