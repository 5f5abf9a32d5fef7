"""Screenshots of what people look at: the demo app and the docs site, in headless Chromium.

Builds the docs site (``mkdocs build --strict``), serves it and a demo app on 127.0.0.1, and
has Debian's ``chromium`` (``apt-get install -y chromium``) capture each page at a desktop
width, so a change to the CSS, a table or the app can be looked at before it ships. The demo
runs on ``--model`` or, by default, on a tiny untrained MiniLM-text checkpoint built here
(its predictions are noise; the layout is what is under review). Usage::

    python benchmarks/screenshots.py                          # -> screenshots/*.png at 1280 px
    python benchmarks/screenshots.py --model runs/mt-model --width 1024 --output shots
    python benchmarks/screenshots.py --pages index.md results.md api/model.md --no-demo

Nothing leaves the machine: Chromium runs with its network services off, on local URLs.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_PAGES = ("index.md", "getting-started.md", "results.md", "api/metrics.md", "api/experiment.md")
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars", "--force-device-scale-factor=1",
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=Path("screenshots"), help="folder for the PNGs (default: screenshots)")
    parser.add_argument("--width", type=int, default=1280, help="window width in px (default: 1280)")
    parser.add_argument("--height", type=int, default=2000, help="window height in px (default: 2000)")
    parser.add_argument("--pages", nargs="+", default=list(DEFAULT_PAGES), help="docs pages (paths under docs/)")
    parser.add_argument("--model", help="checkpoint for the demo (default: a tiny untrained MiniLM-text model)")
    parser.add_argument("--no-demo", action="store_true", help="docs pages only")
    parser.add_argument("--no-docs", action="store_true", help="the demo only")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "chromium", help="the browser binary")
    return parser.parse_args(argv)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def screenshot(chromium: str, url: str, path: Path, width: int, height: int, wait_ms: int) -> Path:
    """One PNG of ``url``; ``wait_ms`` of virtual time lets scripts (Gradio, MathJax) render."""
    with tempfile.TemporaryDirectory(prefix="mtaffect-chromium-") as profile:
        command = [
            chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}",
            f"--virtual-time-budget={wait_ms}", f"--screenshot={path}", url,
        ]
        subprocess.run(command, check=True, capture_output=True, timeout=180)
    if not path.is_file():
        raise RuntimeError(f"chromium wrote no screenshot of {url}")
    print(f"{url} -> {path}")
    return path


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


def serve_folder(folder: Path) -> tuple[str, http.server.ThreadingHTTPServer]:
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/", server


def build_site(site: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "--site-dir", str(site)],
        cwd=REPO, check=True,
    )


def tiny_model(folder: Path) -> Path:
    """An untrained model reading MiniLM text features: enough to show the app's layout."""
    import torch

    from mtaffect.configuration_mtaffect import MTAffectConfig
    from mtaffect.data.extract import TextExtractor, feature_set_name
    from mtaffect.modeling_mtaffect import MTAffectForMultiTaskAffect

    extractor = TextExtractor(pooled=True)
    name = feature_set_name([extractor])
    config = MTAffectConfig(feature_sets={name: {"text": extractor.dim}}, hidden_size=8, num_heads=2)
    config.feature_extractors = {name: {"text": extractor.describe()}}
    torch.manual_seed(0)
    MTAffectForMultiTaskAffect(config).save_pretrained(folder)
    return folder


def page_url(base: str, page: str) -> str:
    stem = page.removesuffix(".md")
    if stem == "index":
        return base
    return base + (stem.removesuffix("/index") + "/")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which(args.chromium) is None:
        print(f"screenshots: error: {args.chromium} not found (apt-get install -y chromium)", file=sys.stderr)
        return 1
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    args.output.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mtaffect-shots-") as tmp:
        tmp_path = Path(tmp)
        if not args.no_docs:
            build_site(tmp_path / "site")
            base, server = serve_folder(tmp_path / "site")
            try:
                for page in args.pages:
                    name = page.removesuffix(".md").replace("/", "-")
                    screenshot(args.chromium, page_url(base, page), args.output / f"docs-{name}.png",
                               args.width, args.height, wait_ms=3000)
            finally:
                server.shutdown()
        if not args.no_demo:
            from mtaffect.demo import build_demo

            model = args.model or str(tiny_model(tmp_path / "tiny-model"))
            demo = build_demo(model, title=None if args.model else "tiny untrained model (layout check)", text="Oh great, another meeting. I just love those.",
                              examples=["I can't believe you did this!", "Thanks, that really helps."])
            port = free_port()
            demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
            try:
                screenshot(args.chromium, f"http://127.0.0.1:{port}/", args.output / "demo.png",
                           args.width, 1100, wait_ms=8000)
            finally:
                demo.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
