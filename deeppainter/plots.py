"""The PNG figures every run writes (matplotlib, Agg backend, atomic saves)."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from deeppainter.runs import FIGURE_DPI, atomic_save_figure  # noqa: E402


def _save(figure, path: Path) -> None:
    atomic_save_figure(path, figure)
    plt.close(figure)


def loss_curves(history: pd.DataFrame, path: Path, title: str) -> None:
    figure, axis = plt.subplots(figsize=(6, 4))
    epochs = np.arange(1, len(history) + 1)
    for column in ("loss", "val_loss"):
        if column in history:
            axis.plot(epochs, history[column], marker="o", label=column)
    axis.set(xlabel="epoch", ylabel="loss", title=title)
    axis.legend()
    _save(figure, path)


def reconstructions(originals: np.ndarray, outputs: np.ndarray, path: Path) -> None:
    """Top row: validation inputs; bottom row: the autoencoder's reconstructions."""
    count = len(originals)
    figure, axes = plt.subplots(2, count, figsize=(2 * count, 4.2), squeeze=False)
    for column in range(count):
        for row, images in enumerate((originals, outputs)):
            axes[row, column].imshow(np.clip(images[column], 0, 1))
            axes[row, column].axis("off")
    axes[0, 0].set_title("input", loc="left")
    axes[1, 0].set_title("reconstruction", loc="left")
    _save(figure, path)


def confusion(matrix: np.ndarray, labels: list[str], path: Path, title: str) -> None:
    size = max(4, 0.6 * len(labels) + 2)
    figure, axis = plt.subplots(figsize=(size + 1, size))
    image = axis.imshow(matrix, cmap="Blues")
    axis.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    axis.set_yticks(range(len(labels)), labels)
    axis.set(xlabel="predicted", ylabel="true", title=title)
    threshold = matrix.max() / 2 if matrix.size else 0
    for (row, column), value in np.ndenumerate(matrix):
        axis.text(column, row, int(value), ha="center", va="center",
                  color="white" if value > threshold else "black", fontsize=8)
    figure.colorbar(image, ax=axis, fraction=0.046)
    _save(figure, path)


def explanation(painting: np.ndarray, overlaid: np.ndarray, title: str, path: Path) -> None:
    """A heat map a person can read: the painting and the same painting under its heat map (jet colours:
    blue = no evidence, red = the most), side by side at the images' own pixel size, titled."""
    from matplotlib import cm, colors

    size = painting.shape[0] / FIGURE_DPI  # inches: one image pixel per figure pixel
    figure, axes = plt.subplots(1, 2, figsize=(2.3 * size + 0.6, size + 0.9), layout="constrained")
    for axis, image, caption in ((axes[0], painting, "the painting, standardised as for the model"),
                                 (axes[1], overlaid, "Grad-CAM: where the evidence is")):
        axis.imshow(image)
        axis.set_title(caption, fontsize=9)
        axis.axis("off")
    scale = cm.ScalarMappable(norm=colors.Normalize(0, 1), cmap="jet")
    figure.colorbar(scale, ax=axes[1], fraction=0.046, pad=0.02).set_label("relative evidence", fontsize=8)
    figure.suptitle(title, fontsize=11)
    _save(figure, path)


def reliability(bins: list[dict], n_bins: int, path: Path, title: str) -> None:
    """Accuracy per bin of the top probability (bars), each bin's mean confidence (dots) and the diagonal."""
    figure, axis = plt.subplots(figsize=(4.5, 4.5))
    centres = [(row["low"] + row["high"]) / 2 for row in bins]
    axis.bar(centres, [row["accuracy"] for row in bins], width=1 / n_bins, edgecolor="black", label="accuracy")
    axis.plot([0, 1], [0, 1], "k--", linewidth=1, label="perfect calibration")
    axis.plot(centres, [row["confidence"] for row in bins], "o", color="tab:red", label="mean confidence")
    axis.set(xlim=(0, 1), ylim=(0, 1), xlabel="top probability", ylabel="accuracy", title=title)
    axis.legend(loc="upper left", fontsize=8)
    figure.tight_layout()
    _save(figure, path)
