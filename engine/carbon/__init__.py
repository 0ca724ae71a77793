"""Carbon front stage: efficiency, energy cascading, material exchange, grid pooling."""
