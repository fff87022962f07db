"""Example data that ships with slatewise."""
