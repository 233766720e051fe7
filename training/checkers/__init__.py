"""Training code for the shipped checkers (faithfulness cross-encoder, injection detector); see training/README.md."""
