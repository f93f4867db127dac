"""Operations: `python -m pipeline.server`, the project's MLflow tracking server for a team (cli.py), its
accounts (MLflow's basic-auth app, basic_auth.py) and their users and permissions (accounts.py).
No training, data or evaluation module imports this folder: what a training needs of a server with
accounts, a one-line refusal when its account lacks a permission, is pipeline/tracking/permissions.py.
"""
