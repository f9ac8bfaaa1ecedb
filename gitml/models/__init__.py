"""gitml.models."""
