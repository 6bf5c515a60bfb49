"""Networks: custom layers, the autoencoder, the classifier head, transfer backbones, and the model registry."""
