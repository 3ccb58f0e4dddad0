"""Hypereal Discord bot: everything that is not Discord glue lives in this package."""

# Kept equal to pyproject.toml's version (a test checks): the Docker image runs from source, not an installed package.
__version__ = "0.1.0"
