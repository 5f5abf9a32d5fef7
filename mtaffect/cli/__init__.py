"""The ``mtaffect`` command: one module per sub-command, each exposing ``register(subparsers)``."""
