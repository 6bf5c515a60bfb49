"""Classical models: handcrafted image features, the paper's Table 1 baselines, stacking."""
