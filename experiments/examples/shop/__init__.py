"""A small example shop made by the ground-truth world (see docs/own-shop.md)."""
