"""Hydra sweeper plugin: the grid sweeper, resumable (see grid_sweeper.py)."""
