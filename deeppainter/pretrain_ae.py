"""``python -m deeppainter.pretrain_ae``: see deeppainter.cli.pretrain_ae."""
from deeppainter.cli.pretrain_ae import main

if __name__ == "__main__":
    main()
