"""lightning-py: an edge node for a decentralized content-delivery network."""

__version__ = "0.1.0"
