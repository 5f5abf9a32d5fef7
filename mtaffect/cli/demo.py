"""``mtaffect demo``: try a checkpoint in the browser (a Gradio app on the pipeline).

    mtaffect demo runs/mt-model                     # http://127.0.0.1:7860
    mtaffect demo user/mtaffect-meld --port 8000
    mtaffect demo runs/mt-model --host 0.0.0.0      # reachable from other machines

Needs the demo extra (``pip install "mtaffect[demo]"``) and, for audio or video input, the
extractor extras the model was trained with (``mtaffect[extract]``).
"""

from __future__ import annotations

import argparse
import sys

from mtaffect.cli.main import command_help


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help=command_help("demo"),
        description="Serve a Gradio app on the multimodal-affect pipeline of a checkpoint (folder or Hub id).",
    )
    parser.add_argument("model", help="checkpoint folder (save_pretrained) or Hub id")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)")
    parser.add_argument("--port", type=int, default=7860, help="port (default: 7860)")
    parser.add_argument("--text", help="an utterance the app opens with, already predicted")
    parser.add_argument("--share", action="store_true", help="also open a public gradio.live link")
    parser.set_defaults(func=_demo)


def _demo(args: argparse.Namespace) -> int:
    try:
        from mtaffect.demo import build_demo
    except ImportError as error:  # pragma: no cover - the module itself has no hard imports
        raise ValueError(str(error)) from None
    from mtaffect.cli.inputs import load_model

    try:
        demo = build_demo(load_model(args.model), text=args.text)
    except ImportError as error:
        raise ValueError(str(error)) from None
    print(f"mtaffect demo: serving {args.model} on http://{args.host}:{args.port} (Ctrl+C stops)", file=sys.stderr)
    demo.launch(server_name=args.host, server_port=args.port, share=args.share)
    return 0
