"""Data: the unified schema, corpus sources and loaders, Arrow reading, batching and feature extraction.

Nothing here imports the model: weak labelling, which runs one, is ``mtaffect.weak_labels``.
"""
