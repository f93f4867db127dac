"""MNIST on disk and on the device: the IDX format (idx.py), where fetch gets it (sources/), the
filtered and normalized data as the stages write and read them (filtered.py, normalized.py), and
the splits as batches on the training device (datamodule.py). NumPy only, but the datamodule."""
