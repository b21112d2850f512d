"""product_descgen: distil a large teacher LLM's product descriptions into a small student."""

__version__ = "0.1.0"
