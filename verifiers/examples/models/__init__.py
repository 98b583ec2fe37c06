"""Copies of docs/models/examples/*.py, shipped with the package (see verifiers.examples)."""
