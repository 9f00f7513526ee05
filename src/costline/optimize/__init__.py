"""Acting on what costline sees: prices paid, and (to come) recommendations with their savings."""
