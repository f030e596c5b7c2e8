"""The dev commands, each a ``register(subparsers)`` named by an ``avrolake.cli`` entry point."""
