"""gradlib: the experiments behind Gradient Highways (filled in at integration)."""
