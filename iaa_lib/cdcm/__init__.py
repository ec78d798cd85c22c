"""CDCM-Net: visual-key / textual-value memory that recalls missing comment features, confidence-based fusion."""
