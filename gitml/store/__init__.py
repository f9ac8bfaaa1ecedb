"""gitml.store."""
