"""Helpers the custom actions share: turning knowledge into chat messages."""
