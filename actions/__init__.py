"""Custom actions, one module per concern. The action server imports every module here
and instantiates every concrete Action subclass, so helpers live in ``bot/``."""
