"""SSMR (Neurocomputing 2024): semantic + style reference retrieval and graph reasoning for artistic images."""
