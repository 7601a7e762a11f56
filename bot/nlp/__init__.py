"""The project's spaCy pipeline: built from ``spacy.blank("en")`` and rule-based parts."""

from bot.nlp.pipeline import build_pipeline, load_pipeline, Normaliser

__all__ = ["build_pipeline", "load_pipeline", "Normaliser"]
