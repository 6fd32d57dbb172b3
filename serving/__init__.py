"""BentoML service for the framing classifier (see service.py)."""
