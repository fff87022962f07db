"""Logs, ground-truth worlds and Gymnasium environments for slate decisions."""
