"""gitml.artifacts."""
