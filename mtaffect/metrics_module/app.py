"""Gradio widget of the metric when this folder is a Hub metric Space (``sdk: gradio``)."""

from pathlib import Path

import evaluate
from evaluate.utils import launch_gradio_widget

module = evaluate.load(str(Path(__file__).with_name("mtaffect_metrics.py")), "sentiment")
launch_gradio_widget(module)
