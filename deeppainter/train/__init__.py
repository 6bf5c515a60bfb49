"""Training: autoencoder pre-training, the shared Keras head trainer, the Keras fold models, distribution."""
