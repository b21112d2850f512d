"""Catalogue preparation: ingest, validate, clean, build model inputs, filter, split (no Kedro)."""
