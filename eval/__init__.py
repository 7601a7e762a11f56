"""Measurements of answer quality: `make eval` (not part of `make test`)."""
