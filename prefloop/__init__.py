"""prefloop: spend a small annotation budget where it teaches a reward model most."""

__all__ = ["__version__"]
__version__ = "0.1.0"
