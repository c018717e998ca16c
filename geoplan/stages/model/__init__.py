"""Need models."""
