"""The trained model in use: as MLflow serves it (served_model.py, a pyfunc that answers digit
and probability), and on real pictures prepared the way MNIST was made (images.py).

    python -m pipeline.predict IMAGE...     # one line per image (see __main__.py)
"""
