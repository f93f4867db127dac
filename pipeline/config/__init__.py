"""Configuration and command plumbing, below everything else (it imports no other part of the
pipeline): the schema (schema.py), conf/ composed and validated (compose.py), the models conf/
offers (models.py), the project directory (project.py), every exception (errors.py), the one
command wrapper (cli.py), credentials in URLs (secrets.py), outputs that appear whole (atomic.py),
writable places (writable.py), and the start-up of the training processes (startup.py).

    python -m pipeline.config [OVERRIDE...]   # conf/ composed: what params.yaml holds
"""
