"""Reading: the extractive reader that picks the answer span, the answer and citation types, calibrated confidence."""
