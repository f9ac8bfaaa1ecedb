"""gitml.serving."""
