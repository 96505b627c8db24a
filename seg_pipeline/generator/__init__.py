"""Realistic, deterministic generator of daily landing files for the segmentation pipeline.

>>> from seg_pipeline.generator import GeneratorConfig, generate
"""

from seg_pipeline.generator.config import GenerationSummary, GeneratorConfig
from seg_pipeline.generator.core import generate
from seg_pipeline.generator.mess import MESS_KINDS
from seg_pipeline.generator.personas import DEFAULT_PERSONAS, PERSONA_NAMES, PersonaSpec

__all__ = [
    "DEFAULT_PERSONAS",
    "MESS_KINDS",
    "PERSONA_NAMES",
    "GenerationSummary",
    "GeneratorConfig",
    "PersonaSpec",
    "generate",
]
