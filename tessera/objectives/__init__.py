"""One module per self-supervised or supervised objective."""
