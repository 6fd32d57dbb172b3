"""framing-pipeline: stance and framing classifier for news passages."""

__version__ = "0.1.0"
