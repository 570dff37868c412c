"""Layer 1: the front door. Validation, dedup and dead-letter routing, and the lake archive."""
