"""Shared test support: vector loading and the secret-leak registry."""
