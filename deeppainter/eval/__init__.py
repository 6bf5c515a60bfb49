"""Evaluation: the fold protocol, metrics, published numbers, trained-model inference, Grad-CAM, the report."""
