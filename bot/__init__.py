"""Hypereal Discord bot: everything that is not Discord glue lives in this package."""
