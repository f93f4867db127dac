"""threes-sevens: MNIST 3s vs 7s as a DVC + Hydra + Lightning + MLflow pipeline."""
