"""tieout: keeps a company's business systems in agreement."""

__version__ = "0.1.0"
