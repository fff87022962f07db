"""Experiment configs, runners, reports and the ``slatewise`` command line."""
