"""The Hydra callbacks that launch runs and sweeps (registered in conf/config.yaml): `preflight`
checks the world a training needs, and every job of a grid sweep before the first one starts;
`sweep` makes a multirun one MLflow parent run with a child run per job."""
