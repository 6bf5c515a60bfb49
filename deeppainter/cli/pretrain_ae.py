"""``python -m deeppainter.pretrain_ae``: unsupervised convolutional-autoencoder pre-training."""
from __future__ import annotations

from pathlib import Path

from deeppainter.cli import common
from deeppainter.data.datasets import sample_dir


def parse_args(argv=None):
    parser = common.make_parser("pretrain_ae", __doc__)
    parser.add_argument("--data", type=Path, default=None,
                        help="folder of images (any layout, labels ignored); default: the embedded sample")
    parser.add_argument("--exclude", default="",
                        help="comma-separated top-level folders to leave out, e.g. the classes you will "
                             "evaluate on: vincent-van-gogh,rembrandt,pierre-auguste-renoir")
    parser.add_argument("--dry-run", action="store_true",
                        help="build the preset's model, print its summary (Total params) and exit")
    common.add_fresh_option(parser)
    return parser.parse_args(argv)


@common.entry_point
def main(argv=None):
    args = parse_args(argv)
    cfg = common.resolve_config(args)
    common.import_keras_quietly()
    if args.dry_run:
        from deeppainter.models.autoencoder import build_autoencoder

        autoencoder, _ = build_autoencoder(cfg.autoencoder, cfg.data.image_size)
        autoencoder.summary()
        return 0
    from deeppainter.train.pretrain import pretraining_run

    common.seed_everything(args.seed)
    exclude = tuple(c.strip() for c in args.exclude.split(",") if c.strip())
    run_dir = pretraining_run(cfg, args.preset, args.seed, args.out, args.data or sample_dir(), exclude,
                              verbose=common.progress_verbose(), fresh=args.fresh)
    print(f"run folder: {run_dir}")
    return 0
