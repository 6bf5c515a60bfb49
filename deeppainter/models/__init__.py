"""Model builders: ``build_autoencoder`` and ``build_classifier`` plus the custom layers."""
from deeppainter.models.autoencoder import build_autoencoder, encoder_input_size
from deeppainter.models.classifier import build_classifier, build_head, make_optimizer
from deeppainter.models.layers import MaxPoolingWithSwitches, MaxUnpooling2D

__all__ = ["build_autoencoder", "encoder_input_size", "build_classifier", "build_head", "make_optimizer",
           "MaxPoolingWithSwitches", "MaxUnpooling2D"]
