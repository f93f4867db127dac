"""The names a run records its metrics under, and its collapse tag: plain strings, no torch, so the
commands that only read runs (compare, report, a sweep's parent) start without loading torch and
torchmetrics (bench/RESULTS.md, "Command start"). What the metrics are: metrics.py."""

# Logged once per epoch (the step is the epoch).
TRAIN_LOSS, VAL_LOSS, VAL_ACC, BIAS = "train_loss", "val_loss", "val_acc", "bias"
# Logged once, at the end of training: the final model on the validation set.
FINAL_VAL_ACC, FINAL_VAL_LOSS = "final_val_acc", "final_val_loss"
# The accuracy on each digit of the pair, by its place in data.digits (which names the digits): the same
# names whatever the pair, so runs and DVC experiments of several pairs share their columns.
ACC_FIRST, ACC_SECOND = "acc_first", "acc_second"
FINAL_VAL_ACC_FIRST, FINAL_VAL_ACC_SECOND = f"final_val_{ACC_FIRST}", f"final_val_{ACC_SECOND}"
# Logged once, after every choice: the final model on the test set, for the record (nothing reads it to choose).
TEST_ACC = "test_acc"  # with test_loss (train.py logs the test scores by key)
TEST_ACC_FIRST, TEST_ACC_SECOND = f"test_{ACC_FIRST}", f"test_{ACC_SECOND}"
# What the model cost: seconds in Trainer.fit, and its trainable parameters (0 for pixel_similarity).
FIT_SECONDS, N_PARAMETERS = "fit_seconds", "n_parameters"


COLLAPSED_TAG = "collapsed"  # a run tag (and a registered version's): how its model answers one digit
