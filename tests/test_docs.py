"""The documentation is true to the code: its examples run, its commands parse, the site builds.

* Every ```` ```python ```` block of ``README.md`` and ``docs/**/*.md`` runs, the blocks of one
  page in order in one namespace (a page is one session), in a temporary working directory.
  A comment line right after a ``print(...)`` line is the output that print must give
  (anything after ``<-`` in it is an explanation, not output).
  A block that only includes files (``--8<-- "path"``, pymdownx.snippets) is not run: the
  included file must exist and be run by the test named in :data:`TESTED_INCLUDES` (files under
  ``docs/results/`` are recorded outputs of real runs, shown as they were printed).
* A block preceded by ``<!-- docs-test: skip (reason) -->`` is not run; the reason is
  required. Used once (the README's Hub round trip, which tests/test_hub.py runs as
  examples/quickstart.py against the test Hub server); keep it rare and honest.
* Every ``mtaffect ...`` line of a ```` ```bash ```` block is parsed by the real CLI parser, and
  every ``python <script>.py ...`` / ``accelerate launch ... <script>.py ...`` / ``torchrun
  ... <script>.py ...`` line names an existing script whose ``parse_args`` (when it has one)
  accepts the arguments. Nothing is executed, so paths like ``/data/MOSEI`` may be made up.
  A bash block preceded by ``<!-- docs-test: run -->`` is also executed; a ```` ```text ````
  block right after it, preceded by ``<!-- docs-test: output -->``, is what it must print.
* ``docs/results.md`` is exactly what ``examples/real_corpora/make_results_page.py`` makes from
  ``docs/results/`` (so the results page is generated, never typed).
* ``mkdocs build --strict`` passes (skipped where mkdocs is not installed: ``pip install -e ".[docs]"``).
"""

from __future__ import annotations

import importlib.util
import io
import os
import re
import shlex
import shutil
import subprocess
import sys
from contextlib import redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
PAGES = [REPO / "README.md", *sorted(DOCS.rglob("*.md"))]
#: Files included into the docs with ``--8<--`` -> the test file that runs them.
TESTED_INCLUDES = {
    "examples/quickstart.py": "tests/test_hub.py",
    "examples/train_multitask.py": "tests/test_docs.py",
    "examples/real_corpora/study.yaml": "tests/test_docs.py",
}
SKIP = re.compile(r"<!--\s*docs-test:\s*skip\s*\((?P<reason>[^)]+)\)\s*-->")
RUN = re.compile(r"<!--\s*docs-test:\s*run\s*-->")
OUTPUT = re.compile(r"<!--\s*docs-test:\s*output\s*-->")
FENCE = re.compile(r"^```(?P<lang>[\w+-]*)\s*$")
INCLUDE = re.compile(r'^--8<--\s+"(?P<path>[^"]+)"\s*$')


@dataclass
class Block:
    page: Path
    line: int
    lang: str
    code: str
    marker: str  # the HTML comment right before the fence, or ""

    def where(self) -> str:
        return f"{self.page.relative_to(REPO)}:{self.line}"

    def includes(self) -> list[str] | None:
        """Paths of a block made only of ``--8<--`` includes, else None."""
        lines = [line.strip() for line in self.code.splitlines() if line.strip()]
        matches = [INCLUDE.match(line) for line in lines]
        return [m["path"] for m in matches] if lines and all(matches) else None


def code_blocks(page: Path) -> list[Block]:
    blocks, lines = [], page.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if not fence:
            i += 1
            continue
        start, body = i, []
        i += 1
        while i < len(lines) and not lines[i].startswith("```"):
            body.append(lines[i])
            i += 1
        if i == len(lines):
            raise AssertionError(f"{page}:{start + 1}: unclosed code fence")
        previous = next((lines[j].strip() for j in range(start - 1, -1, -1) if lines[j].strip()), "")
        marker = previous if previous.startswith("<!--") else ""
        blocks.append(Block(page, start + 1, fence["lang"], "\n".join(body), marker))
        i += 1
    return blocks


def _pages_with(lang: str) -> list[Path]:
    """Pages with at least one block of ``lang`` to run (include-only blocks are not run)."""
    return [page for page in PAGES if any(b.lang == lang and b.includes() is None for b in code_blocks(page))]


def _id(page: Path) -> str:
    return str(page.relative_to(REPO))


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """A temporary working directory, one torch thread, and the corpus registry restored after."""
    import torch

    from mtaffect.data.corpora import registry

    monkeypatch.chdir(tmp_path)
    saved_registry = dict(registry._REGISTRY)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield tmp_path
    finally:
        torch.set_num_threads(threads)
        registry._REGISTRY.clear()
        registry._REGISTRY.update(saved_registry)


def _recording_print(printed: list[str], output: io.StringIO):
    """A ``print`` for the page's namespace that also records what each call printed."""

    def recording_print(*args, sep=" ", end="\n", file=None, flush=False):
        text = sep.join(str(arg) for arg in args)
        if file is None:
            printed.append(text)
        print(text, end=end, file=file or output)

    return recording_print


def expected_prints(code: str) -> list[tuple[int, str]]:
    """(line, expected output) of every ``print(`` line followed by a ``# output`` comment line."""
    lines = code.splitlines()
    expected = []
    for i, line in enumerate(lines[:-1]):
        following = lines[i + 1].strip()
        if line.lstrip().startswith("print(") and following.startswith("# "):
            expected.append((i + 1, following[2:].split("<-")[0].rstrip()))
    return expected


@pytest.mark.parametrize("page", _pages_with("python"), ids=_id)
def test_python_blocks_run(page, isolated):
    namespace: dict = {"__name__": "__docs__"}
    ran = 0
    for block in code_blocks(page):
        if block.lang != "python":
            continue
        if block.includes() is not None:
            continue  # checked by test_included_files_exist_and_are_tested
        skip = SKIP.match(block.marker)
        if skip:
            continue
        assert "docs-test" not in block.marker, f"{block.where()}: unknown docs-test marker {block.marker!r}"
        output, printed = io.StringIO(), []
        namespace["print"] = _recording_print(printed, output)
        try:
            with redirect_stdout(output):
                exec(compile(block.code, block.where(), "exec"), namespace)
        except Exception as error:
            raise AssertionError(f"{block.where()}: the code block failed: {error!r}\n{output.getvalue()}") from error
        expected = expected_prints(block.code)
        if expected:
            assert len(printed) == sum(1 for line in block.code.splitlines() if line.lstrip().startswith("print(")), (
                f"{block.where()}: a print ran more or less than once; expected outputs cannot be matched"
            )
            lines = block.code.splitlines()
            print_lines = [i + 1 for i, line in enumerate(lines) if line.lstrip().startswith("print(")]
            for line, text in expected:
                got = printed[print_lines.index(line)].rstrip()
                assert got == text, f"{block.where()} (+{line}): the page shows {text!r}, the code prints {got!r}"
        ran += 1
    assert ran, f"{_id(page)} has python blocks but none ran"


def test_skip_markers_give_a_reason():
    for page in PAGES:
        for block in code_blocks(page):
            if "docs-test" in block.marker and "skip" in block.marker:
                assert SKIP.match(block.marker), f"{block.where()}: write <!-- docs-test: skip (why) -->"


def test_included_files_exist_and_are_tested():
    seen = set()
    for page in PAGES:
        for block in code_blocks(page):
            for path in block.includes() or []:
                assert (REPO / path).is_file(), f"{block.where()}: includes missing file {path}"
                if path.startswith("docs/results/"):
                    continue  # a recorded output of a real run (see docs/getting-started.md), not code
                assert path in TESTED_INCLUDES, f"{block.where()}: {path} is included but no test is known to run it"
                test_file = REPO / TESTED_INCLUDES[path]
                name = Path(path).name
                assert name in test_file.read_text(encoding="utf-8"), f"{TESTED_INCLUDES[path]} never names {name}"
                seen.add(path)
    assert seen, "no page includes an example file"


# ---- shell commands ------------------------------------------------------------------------


def _commands(code: str) -> list[str]:
    """Logical lines of a bash block: continuations joined, comments and blank lines dropped."""
    joined = re.sub(r"\\\n\s*", " ", code)
    commands = []
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        line = re.sub(r"^(for .*?; do|do|then)\s+", "", line)
        for part in re.split(r"\s*(?:&&|;)\s*", line):
            part = part.strip()
            if part and part not in ("done", "fi"):
                commands.append(part)
    return commands


def _load_script(path: Path):
    spec = importlib.util.spec_from_file_location(f"docs_script_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _check_script(block: Block, script: str, arguments: list[str]) -> None:
    path = REPO / script
    assert path.is_file(), f"{block.where()}: names a script that does not exist: {script}"
    if path.suffix != ".py":
        return
    module = _load_script(path)
    parse = getattr(module, "parse_args", None)
    if parse is None:
        return
    try:
        parse(arguments)
    except SystemExit as error:
        raise AssertionError(f"{block.where()}: {script} rejects the arguments {arguments}") from error


def _check_command(block: Block, command: str) -> bool:
    """Parse one command if we know its program; True when it was checked."""
    from mtaffect.cli.main import build_parser

    words = shlex.split(command, comments=True)
    while words and re.match(r"^[A-Z_][A-Z0-9_]*=", words[0]):
        words = words[1:]  # environment assignments
    if not words:
        return False
    program, arguments = words[0], words[1:]
    if program == "mtaffect":
        try:
            with redirect_stdout(io.StringIO()):
                build_parser().parse_args(arguments)
        except SystemExit as error:
            raise AssertionError(f"{block.where()}: `mtaffect` rejects {arguments}") from error
        return True
    if program in ("python", "python3") and arguments and arguments[0].endswith(".py"):
        _check_script(block, arguments[0], arguments[1:])
        return True
    if program in ("accelerate", "torchrun") and "mtaffect.cli.main" in arguments:
        position = arguments.index("mtaffect.cli.main")
        assert position and arguments[position - 1] == "-m", f"{block.where()}: expected -m mtaffect.cli.main"
        return _check_command(block, shlex.join(["mtaffect", *arguments[position + 1 :]]))
    if program in ("accelerate", "torchrun"):
        scripts = [i for i, word in enumerate(arguments) if word.endswith(".py")]
        if scripts:
            _check_script(block, arguments[scripts[0]], arguments[scripts[0] + 1 :])
            return True
    if program.endswith(".sh") or program.endswith(".py"):
        assert (REPO / program).is_file(), f"{block.where()}: names a script that does not exist: {program}"
        return True
    return False


def test_shell_commands_parse(monkeypatch):
    monkeypatch.chdir(REPO)
    checked = 0
    for page in PAGES:
        for block in code_blocks(page):
            if block.lang not in ("bash", "sh", "console"):
                continue
            for command in _commands(block.code):
                checked += _check_command(block, command)
    assert checked >= 10, f"only {checked} documented commands were checked"


RUNNABLE_BASH_PAGES = [p for p in PAGES if any(RUN.match(b.marker) for b in code_blocks(p) if b.lang == "bash")]


@pytest.mark.parametrize("page", RUNNABLE_BASH_PAGES, ids=_id)
def test_runnable_bash_blocks(page, tmp_path):
    bin_dir = str(Path(sys.executable).parent)
    blocks = code_blocks(page)
    for block, following in zip(blocks, [*blocks[1:], None]):
        if block.lang == "bash" and RUN.match(block.marker):
            done = subprocess.run(
                ["bash", "-euo", "pipefail", "-c", block.code], cwd=tmp_path, capture_output=True, text=True,
                env={**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")},
                timeout=300,
            )
            assert done.returncode == 0, f"{block.where()}: exit {done.returncode}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
            if following is not None and following.lang == "text" and OUTPUT.match(following.marker):
                assert done.stdout.strip() == following.code.strip(), (
                    f"{following.where()}: the page shows other output than {block.where()} prints:\n{done.stdout}"
                )


def test_output_blocks_follow_a_runnable_block():
    for page in PAGES:
        blocks = code_blocks(page)
        for previous, block in zip([None, *blocks], blocks):
            if OUTPUT.match(block.marker):
                assert block.lang == "text", f"{block.where()}: an output block is a ```text block"
                assert previous is not None and previous.lang == "bash" and RUN.match(previous.marker), (
                    f"{block.where()}: an output block must follow a <!-- docs-test: run --> bash block"
                )


def test_command_parser_catches_a_wrong_flag():
    block = Block(REPO / "README.md", 1, "bash", "", "")
    with pytest.raises(AssertionError, match="rejects"):
        _check_command(block, "mtaffect data convert --corpus meld --input x --output y --no-such-flag")
    with pytest.raises(AssertionError, match="does not exist"):
        _check_command(block, "python examples/no_such_script.py --help")
    assert _check_command(block, "ACCELERATE_USE_CPU=true mtaffect data list")


# ---- example files and the results page ------------------------------------------------------


def test_train_multitask_example_runs(tmp_path):
    import json

    import torch

    module = _load_script(REPO / "examples" / "train_multitask.py")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        metrics = module.main([
            "--output-dir", str(tmp_path / "out"), "--max-steps", "3", "--size-scale", "0.05",
            "--hidden-size", "8", "--encoder", "mean", "--batch-size", "8",
        ])
    finally:
        torch.set_num_threads(threads)
    saved = json.loads((tmp_path / "out" / "test_metrics.json").read_text())
    assert saved["test_combined_score"] == pytest.approx(metrics["test_combined_score"])
    assert "test_synthetic_mustard_sarcasm_weighted_f1" in saved
    assert (tmp_path / "out" / "best" / "config.json").is_file()


def test_recipe_study_configs_are_valid(tmp_path, monkeypatch):
    from mtaffect.study import StudyConfig

    # A config's fold folders must exist where it runs (run.sh's working folder, which prepare.py fills).
    for k in range(5):
        (tmp_path / f"mustard-fold{k}-minilm").mkdir()
    monkeypatch.chdir(tmp_path)

    prepare = (REPO / "examples" / "real_corpora" / "prepare.py").read_text(encoding="utf-8")
    run = (REPO / "examples" / "real_corpora" / "run.sh").read_text(encoding="utf-8")
    page = _load_script(REPO / "examples" / "real_corpora" / "make_results_page.py")
    outputs = set()
    for name, (_, config_file) in page.STUDIES.items():
        path = REPO / config_file
        config = StudyConfig.from_file(path)
        assert [source.name for source in config.corpora] == ["meld", "emorynlp", "mustard"], name
        # The fine-tuned-encoder study is cut to 3 seeds to fit a CPU (its section on the page says so).
        assert len(config.seeds) >= (3 if name == "fine-tuned" else 5) and config.torch_threads == 1
        assert path.name in run, f"run.sh does not run {path.name}"
        for source in config.corpora:
            for folder in [source.path] if source.path else list(source.folds or []):
                if folder.startswith("published/"):  # the corpora as published, which run.sh links
                    assert folder == f"published/{source.name}" and "published/$name" in run, folder
                    continue
                assert f'"{folder}"' in prepare or folder.startswith("mustard-fold"), (
                    f"prepare.py does not write the folder {folder} that {path.name} reads"
                )
        mustard = config.corpora[-1]
        if name == "5-fold":
            assert mustard.folds == [f"mustard-fold{k}-minilm" for k in range(5)]
            assert 'f"mustard-fold{k}-minilm"' in prepare
        elif name == "fine-tuned":
            assert mustard.folds is None and mustard.options == {"protocol": "speaker_independent"}
        else:
            assert mustard.folds is None and mustard.path == "mustard-si-minilm"
        outputs.add(config.output_dir)
    assert len(outputs) == len(page.STUDIES), "two studies would write into the same folder"


def test_results_page_is_generated_from_the_report():
    module = _load_script(REPO / "examples" / "real_corpora" / "make_results_page.py")
    expected = module.render_folder(DOCS / "results")
    page = (DOCS / "results.md").read_text(encoding="utf-8")
    assert page == expected, (
        "docs/results.md differs from what examples/real_corpora/make_results_page.py makes from "
        "docs/results/: run `python examples/real_corpora/make_results_page.py --docs docs`."
    )


def test_results_page_quotes_no_unsourced_published_number():
    module = _load_script(REPO / "examples" / "real_corpora" / "make_results_page.py")
    for entry in module.load_published():
        if entry.get("value") is not None:
            assert entry.get("source") and entry.get("url"), f"published number without a source: {entry}"


def test_mkdocs_build_strict(tmp_path):
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings")
    pytest.importorskip("material")
    mkdocs = shutil.which("mkdocs", path=str(Path(sys.executable).parent)) or shutil.which("mkdocs")
    command = [mkdocs] if mkdocs else [sys.executable, "-m", "mkdocs"]
    done = subprocess.run(
        # Not --quiet: it drops the warnings before --strict can count them (the build then passes
        # whatever it warns about).
        [*command, "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=REPO, capture_output=True, text=True, timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    warnings = [line for line in done.stderr.splitlines() if line.startswith("WARNING")]
    assert done.returncode == 0 and not warnings, "mkdocs build --strict failed:\n" + "\n".join(warnings or [done.stderr[-3000:]])
    assert (tmp_path / "site" / "api" / "model" / "index.html").is_file()


def test_recorded_default_run_matches_todays_defaults():
    """getting-started.md shows a recorded `mtaffect run`; it must be a run of the current defaults.

    When a default changes (study config, synthetic corpus sizes), rerun `mtaffect run --quiet`
    and record its stdout in docs/results/default-run.txt and its report.md (whose "What ran"
    section lists the config and corpora read here) in docs/results/default-report.md.
    """
    import json

    from mtaffect.data.schema import get_corpus_info
    from mtaffect.study import StudyConfig, load_study_corpora
    from mtaffect.study import config_record as _config_record

    recorded = (DOCS / "results" / "default-report.md").read_text(encoding="utf-8")
    run = (DOCS / "results" / "default-run.txt").read_text(encoding="utf-8")
    assert "Full tables in mtaffect-output/report.md" in run  # the same run's printout

    def field(name: str):
        match = re.search(rf"^- \*\*{re.escape(name)}\*\*: (.*)$", recorded, re.M)
        assert match, f"docs/results/default-report.md has no `{name}` line"
        return json.loads(match.group(1))

    defaults = StudyConfig()
    config = json.loads(json.dumps(_config_record(defaults)))
    recorded_config = field("config")
    # `workers` defaults to the machine's core count; the recording says what it resolved to.
    config.pop("workers"), recorded_config.pop("workers")
    assert recorded_config == config, "docs/results/default-report.md was recorded with other defaults: rerun it"
    corpora = load_study_corpora(defaults)
    sizes = {name: (d["train"].num_rows, get_corpus_info(d).feature_set) for name, d in corpora.items()}
    recorded_sizes = {name: (c["train_size"], c["feature_set"]) for name, c in field("corpora").items()}
    assert recorded_sizes == sizes, "the synthetic default corpora changed since the recorded run: rerun it"


def test_no_page_describes_polarity_sentiment_or_one_vs_rest_scores_as_the_code_does_not():
    """What the corpus pages say of sentiment classes and headline metrics is what the code does:
    MELD's sentiment is a 3-class head (not a clipped, rounded score) and a one-vs-rest mean is
    never called a headline (``mtaffect.metrics.HEADLINE_METRICS``)."""
    stale = ("clip to [-1, 1], round", "Sentiment as a score", "per-class acc (mean)", "per-class F1 (mean)",
             "study study")
    for page in [REPO / "README.md", *sorted((DOCS / "corpora").glob("*.md")), DOCS / "concepts" / "study.md",
                 DOCS / "results.md", DOCS / "getting-started.md"]:
        text = page.read_text(encoding="utf-8")
        found = [phrase for phrase in stale if phrase in text]
        assert not found, f"{page.relative_to(REPO)} still says {found}"
    meld = (DOCS / "corpora" / "meld.md").read_text(encoding="utf-8")
    assert "Sentiment is 3 classes, not a score" in meld and "empty_transcripts" in meld
