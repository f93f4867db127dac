"""Hydra sweeper plugin: Optuna ask/tell (see optuna_sweeper.py)."""
