"""The documentation: the site builds strictly, and the reference parts are true to the code.

``mkdocs build --strict`` runs once per session into a temporary folder (warnings, broken links
and docstrings mkdocstrings cannot render fail it). The built pages are then checked against the
code: every public name has an entry in the API reference, and every command and option of
``ser`` is on the CLI reference page (which a hook generates from the typer app). The README
stays a short front door, and the results pages keep the markers that the benchmarks write
between.
"""

from __future__ import annotations

import html
import importlib
import os
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest

import ser_classic

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DOCS = PROJECT_ROOT / "docs"
README_MAX_LINES = 150


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site built by ``mkdocs build --strict``, as CI builds it."""
    try:
        import mkdocs  # noqa: F401
    except ImportError:
        message = 'mkdocs is not installed: pip install -e ".[docs]"'
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    folder = tmp_path_factory.mktemp("site")
    environment = {
        **os.environ,
        "NO_MKDOCS_2_WARNING": "1",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")])),
    }
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(folder)],
        cwd=PROJECT_ROOT, env=environment, capture_output=True, text=True, timeout=600,
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-6000:]
    return folder


def _anchors(pages: list[Path]) -> set[str]:
    return {html.unescape(anchor) for page in pages for anchor in re.findall(r'id="([^"]+)"', page.read_text())}


def _public_modules() -> list[object]:
    """``ser_classic`` and every module under it that declares ``__all__``."""
    found = [ser_classic]
    for info in pkgutil.walk_packages(ser_classic.__path__, "ser_classic."):
        module = importlib.import_module(info.name)
        if hasattr(module, "__all__"):
            found.append(module)
    return found


def test_the_site_builds_with_mkdocs_strict(site: Path) -> None:
    assert (site / "index.html").is_file()
    assert (site / "api" / "index.html").is_file() and (site / "cli" / "index.html").is_file()


def test_every_public_name_has_an_entry_in_the_api_reference(site: Path) -> None:
    """Each name of ``ser_classic.__all__`` and of every module's ``__all__`` has an entry (an
    anchor) in the API pages: under the module that lists it, under the module that defines
    it, or under a documented module that lists it too (a re-export)."""
    modules = _public_modules()
    anchors = _anchors(sorted((site / "api").rglob("*.html")))
    documented = {module.__name__ for module in modules if module.__name__ in anchors}
    listing = {module.__name__: set(module.__all__) for module in modules}
    missing = []
    for module in modules:
        for name in module.__all__:
            value = getattr(module, name)
            homes = {module.__name__, getattr(value, "__module__", None) or module.__name__}
            homes |= {other for other in documented if name in listing[other] and other.startswith(module.__name__)}
            if not any(f"{home}.{name}" in anchors for home in homes):
                missing.append(f"{module.__name__}.{name}")
    assert missing == [], f"public names without an entry in docs/api/: {missing}"


def test_every_command_and_option_is_on_the_cli_reference_page(site: Path) -> None:
    import click
    import typer.main

    from ser_classic.cli import app

    page = " ".join(html.unescape(re.sub(r"<[^>]+>", "", (site / "cli" / "index.html").read_text())).split())
    anchors = _anchors([site / "cli" / "index.html"])
    group = typer.main.get_command(app)
    for name, command in group.commands.items():
        assert f"ser-{name}" in anchors, f"ser {name} has no section"
        context = click.Context(command, info_name=name)
        for parameter in command.get_params(context):
            for option in parameter.opts if parameter.param_type_name == "option" else []:
                assert option in page, f"ser {name} {option} is not on the CLI reference page"
        first_sentence = " ".join((command.help or "").replace("`", "").split()).split(". ")[0]
        assert first_sentence in page, f"ser {name}: its help text is not on the page"


def test_the_readme_is_a_short_front_door_whose_links_exist() -> None:
    readme = (PROJECT_ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= README_MAX_LINES
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", readme):
        if not target.startswith(("http://", "https://")):
            assert (PROJECT_ROOT / target).exists(), f"README links to {target}, which does not exist"


def test_every_docs_page_named_in_the_code_and_the_readme_exists() -> None:
    """A page of docs/ named in a docstring, a comment, a benchmark or the README exists."""
    sources = [PROJECT_ROOT / "README.md", PROJECT_ROOT / "pyproject.toml", *PROJECT_ROOT.glob("*.py")]
    for folder in ("ser_classic", "benchmarks", "tests"):
        sources += sorted((PROJECT_ROOT / folder).rglob("*.py"))
    for source in sources:
        for page in re.findall(r"\bdocs/([\w./-]+\.md)\b", source.read_text()):
            assert (DOCS / page).is_file(), f"{source.relative_to(PROJECT_ROOT)} names docs/{page}, which does not exist"


def test_benchmarks_write_results_pages_in_docs_between_intact_markers() -> None:
    """No benchmark writes into the README, and every section a benchmark writes
    (``write_section(..., "NAME", ...)``) has its begin and end markers once each, in order, in
    exactly one page of docs/ (or in the benchmark's own findings page beside it)."""
    scripts = sorted((PROJECT_ROOT / "benchmarks").glob("*.py"))
    sections: set[str] = set()
    for script in scripts:
        text = script.read_text()
        assert "README" not in text, f"{script.name} mentions the README: benchmarks write docs/ pages only"
        constants = dict(re.findall(r'^(\w+) = "([\w-]+)"$', text, flags=re.MULTILINE))
        for argument in re.findall(r"(?<!def )write_section\([^,]+,\s*([^,]+),", text):
            argument = argument.strip()
            sections.add(argument.strip('"') if argument.startswith('"') else constants[argument])
    assert {"accuracy", "headline", "heldout", "crosscorpus", "formats", "speed"} <= sections
    pages = [*DOCS.glob("*.md"), *(PROJECT_ROOT / "benchmarks").glob("*.md")]
    for name in sorted(sections):
        begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
        holders = [page for page in pages if begin in page.read_text() or end in page.read_text()]
        assert len(holders) == 1, f"section {name!r}: markers in {holders}"
        text = holders[0].read_text()
        assert text.count(begin) == 1 and text.count(end) == 1 and text.index(begin) < text.index(end), holders[0]
