"""The reader-training lab: fine-tuning, training examples, unanswerable twins, averaging, calibration.

Nothing in the product imports this package; only the ``qa reader`` commands do (``qa.cli.reader``)."""
