"""``mtaffect demo``: try a checkpoint in the browser (a Gradio app on the pipeline).

    mtaffect demo --model runs/mt-model                   # http://127.0.0.1:7860
    mtaffect demo --model user/mtaffect-meld --port 8000
    mtaffect demo --model runs/mt-model --host 0.0.0.0    # reachable from other machines

The model is ``--model``, as in ``evaluate`` and ``predict``; ``mtaffect demo MODEL`` is accepted too.

Needs the demo extra (``pip install "mtaffect[demo]"``) and, for audio or video input, the
extractor extras the model was trained with (``mtaffect[extract]``).
"""

from __future__ import annotations

import argparse
import sys

from mtaffect.cli.inputs import add_model_argument, resolve_model
from mtaffect.cli.main import command_help


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help=command_help("demo"),
        description="Serve a Gradio app on the multimodal-affect pipeline of a checkpoint (folder or Hub id).",
    )
    add_model_argument(parser, positional=True)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)")
    parser.add_argument("--port", type=int, default=7860, help="port (default: 7860)")
    parser.add_argument("--text", help="an utterance the app opens with, already predicted")
    parser.add_argument("--share", action="store_true", help="also open a public gradio.live link")
    parser.set_defaults(func=_demo)


def _demo(args: argparse.Namespace) -> int:
    model = resolve_model(args, "demo")
    if not 1 <= args.port <= 65535:
        raise ValueError(f"--port {args.port}: a port is a number in 1-65535.")
    from mtaffect.checkpoints import load_model
    from mtaffect.demo import build_demo

    try:
        demo = build_demo(load_model(model), text=args.text)
    except ImportError as error:
        raise ValueError(str(error)) from None
    print(f"mtaffect demo: serving {model} on http://{args.host}:{args.port} (Ctrl+C stops)", file=sys.stderr)
    demo.launch(server_name=args.host, server_port=args.port, share=args.share)
    return 0
