"""Corpus loaders, one module per published format."""
