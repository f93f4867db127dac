"""`python -m pipeline.predict IMAGE...`: the registered model on real pictures (cli.py), each prepared
the way MNIST's digits were made (images.py). The model as MLflow serves it is
pipeline/tracking/served_model.py; served_model.py here is the name older logged models load it by.
"""
