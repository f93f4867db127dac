"""Configuration and command plumbing, below everything else (it imports no other part of the
pipeline): the schema (schema.py), conf/ composed and validated, and the models it offers
(compose.py), the project directory (project.py), every exception (errors.py), the one command
wrapper and the start-up of the training processes (cli.py), credentials in URLs (secrets.py),
and where commands write: writable places, outputs that appear whole (atomic.py).

    python -m pipeline.config [OVERRIDE...]   # conf/ composed: what params.yaml holds
"""
