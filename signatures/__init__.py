"""Contracts only: the pydantic data model of dialogues and taxonomies, and the DSPy signatures."""

from extes.signatures.dialogue import Dialogue, Meta, Turn
from extes.signatures.taxonomy import Scenario, Strategy, Taxonomy

__all__ = ["Dialogue", "Meta", "Turn", "Scenario", "Strategy", "Taxonomy"]
