"""Tables: reading CSV/Parquet, the fitted preprocessing, feature tokens and feature-subset sampling."""
