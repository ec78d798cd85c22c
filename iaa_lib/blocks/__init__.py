"""Building blocks shared by the papers: backbones by name, graph layers, retrieval, text features, the GPT decoder."""
