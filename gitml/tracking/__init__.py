"""gitml.tracking."""
