"""gitml.registry."""
