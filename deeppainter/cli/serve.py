"""``python -m deeppainter.serve [--run RUN_DIR] [--host 127.0.0.1] [--port 8000]``: a local page that asks a model
"who painted this?".

Open the printed address, choose or drop images (any format ``standardize`` reads): for each, the painting
as the model saw it (standardised exactly as in training, by the same function as ``predict``), the top
painters with their probabilities, "none of the known painters" where the model scores open-set, a heat
map of where the decision comes from (Grad-CAM for the Keras models; an occlusion map, faithful to any
model, for the scikit-learn ones; the page names which), the nearest training paintings when the run
carries a reference set, and a link to the CSV ``predict`` would write. RUN_DIR is a cv10 run folder
made with ``--save-final-model``; without it, the ready model shipped in the package answers. Uploads
stay in a temporary folder only while they are answered; ``serve`` writes no files. Limits and views:
``--set serve.max_upload_mb=25``, ``serve.max_megapixels``, ``serve.min_side``, ``serve.max_files``,
``serve.top_k``, ``serve.occlusion_grid``, ``serve.neighbours``.
The page listens on 127.0.0.1 (this machine only) unless ``--host`` says otherwise.
"""
from __future__ import annotations

import sys

from deeppainter.cli import common
from deeppainter.errors import UserError

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def parse_args(argv=None):
    parser = common.make_parser("serve", __doc__)
    common.add_run_option(parser, ready_default=True)
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on; 0.0.0.0 opens the page to your whole network (it has no login)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (0: any free port)")
    for action in parser._actions:  # the shared --out names a runs root elsewhere; serve writes nothing
        if action.dest == "out":
            action.help = "unused: serve writes no files (uploads live in a temporary folder while answered)"
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        raise UserError(f"--port {args.port}: must be 0..65535")
    return args


def run(args) -> None:
    cfg = common.resolve_config(args)
    common.seed_everything(args.seed)  # imports Keras quietly, before the model's modules do
    from deeppainter.eval.inference import load_final_model, load_reference_set
    from deeppainter.tools import web

    final = load_final_model(args.run)
    service = web.PainterService(final, cfg.serve, load_reference_set(args.run))
    sock = web.bind(args.host, args.port)
    if args.host not in LOCAL_HOSTS:
        print(f"warning: --host {args.host}: anyone who can reach this machine can use the page (no login)",
              file=sys.stderr)
    service.warm_up()
    print(f"serving {final.name} from {args.run} at {web.url_of(sock)} (Ctrl-C stops)", flush=True)
    web.serve(web.create_app(service), sock)


main = common.command(run, parse_args)
