"""Data: the unified schema, corpus loaders, weak labels, batching and feature extraction."""
