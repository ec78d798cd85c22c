"""MILNet (ACM TOMM 2024): reference retrieval, a GCN over the query and its references, AdaEMD."""
