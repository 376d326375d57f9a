"""Auto-tuning: the vectorized threshold search and the engine that applies it."""
