"""The documentation stays usable: a short README whose test command is the one CI runs, links
that resolve, a docs site whose nav lists every page, every configuration key documented, and
no reference to a file outside the repository (docs/design.md, "Data policy").

``mkdocs build --strict`` itself runs in ``.ci/run``, not here (it needs the ``docs`` extra).
"""

import re
import sys
import unicodedata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"

#: README lines allowed: the manual lives in docs/ (issue 19)
README_MAX_LINES = 250

#: the two quick-start commands, as the README has always given them (issue 19: keep them exactly)
QUICK_START = [
    "python -m pip install -e . && python -m engine run --out out",
    'python -m pip install -e ".[test]" && python -m pytest -q',
]

#: references to files outside the repository: the research folder's notes and paths into it.
#: Spelled with character classes so that this file does not match itself.
OUTSIDE = re.compile(r"\b(?:STYL[E]|DESIG[N])\.md\b|AERMOD_NOTE[S]|(?<![\w-])share[d]/")
#: folders and files whose text is checked for OUTSIDE
SCANNED = ["engine", "kernels", "tests", "benchmarks", "config", "docs", "README.md", "mkdocs.yml",
           "pyproject.toml", ".ci"]
#: binary files and generated folders that hold no references
SKIP_SUFFIXES = {".png", ".svg", ".pdf", ".nc", ".npz", ".npy", ".pyc", ".gz", ".xlsx", ".so"}
SKIP_DIRS = {"__pycache__", ".pytest_cache", ".hypothesis"}


def _code_blocks_removed(text):
    """Markdown text without fenced code blocks and inline code (links there are not links)."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)
    return re.sub(r"`[^`\n]*`", "", text)


def _links(md_file):
    """(line number, target) of every inline link and image of a markdown file."""
    text = _code_blocks_removed(md_file.read_text(encoding="utf-8"))
    out = []
    for m in re.finditer(r"!?\[[^\]\n]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)", text):
        out.append((text.count("\n", 0, m.start()) + 1, m.group(1)))
    return out


def _slug(heading):
    """The anchor MkDocs (Python-Markdown's toc) gives a heading: ASCII, lower case, words joined by -."""
    text = re.sub(r"[`*]", "", heading)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"[^\w\s-]", "", text).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def _anchors(md_file):
    text = re.sub(r"^```.*?^```", "", md_file.read_text(encoding="utf-8"), flags=re.M | re.S)
    return {_slug(m.group(1)) for m in re.finditer(r"^#{1,6}\s+(.+?)\s*#*\s*$", text, flags=re.M)}


def _markdown_files():
    return [README] + sorted(DOCS.rglob("*.md"))


def _quick_start_commands():
    text = README.read_text(encoding="utf-8")
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, flags=re.S)
    assert block, "README.md: no ```bash block under '## Quick start'"
    return [ln.strip() for ln in block.group(1).splitlines() if ln.strip() and not ln.lstrip().startswith("#")]


def test_readme_is_short():
    n = len(README.read_text(encoding="utf-8").splitlines())
    assert n <= README_MAX_LINES, f"README.md has {n} lines; at most {README_MAX_LINES} (move detail into docs/)"


def test_quick_start_commands_are_unchanged():
    assert _quick_start_commands() == QUICK_START


def test_ci_runs_the_readme_test_command_verbatim():
    test_cmd = next(c for c in _quick_start_commands() if "pytest" in c)
    ci_lines = [ln.strip() for ln in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()]
    runs = [ln for ln in ci_lines if not ln.startswith("#") and ln.startswith(test_cmd)]
    assert runs, f".ci/run does not run the README's test command {test_cmd!r}"
    # whatever follows on that line only records the exit status
    assert all(re.fullmatch(r"(\|\|\s*rc=\$\?)?", ln[len(test_cmd):].strip()) for ln in runs), runs


def test_ci_builds_the_docs_strictly():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert re.search(r"^[^#\n]*mkdocs build --strict", ci, flags=re.M), ".ci/run does not run mkdocs build --strict"


def test_relative_links_resolve():
    bad = []
    for md in _markdown_files():
        for line, target in _links(md):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target, flags=re.I):  # http:, https:, mailto:
                continue
            path_part, _, anchor = target.partition("#")
            dest = (md.parent / path_part).resolve() if path_part else md
            where = f"{md.relative_to(ROOT)}:{line}: {target}"
            if not dest.is_relative_to(ROOT):
                bad.append(f"{where} (outside the repository)")
            elif not dest.is_file():
                bad.append(f"{where} (no such file)")
            elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
                bad.append(f"{where} (no heading with anchor '#{anchor}' in {dest.relative_to(ROOT)})")
    assert not bad, "broken links:\n" + "\n".join(bad)


def test_links_inside_docs_stay_inside_docs():
    # the site is built from docs/ alone: a link to ../engine/... would be broken on the site
    bad = []
    for md in sorted(DOCS.rglob("*.md")):
        for line, target in _links(md):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target, flags=re.I):
                continue
            path_part = target.partition("#")[0]
            if path_part and not (md.parent / path_part).resolve().is_relative_to(DOCS.resolve()):
                bad.append(f"{md.relative_to(ROOT)}:{line}: {target}")
    assert not bad, "links from docs/ to files outside docs/ (name the file in `code` instead):\n" + "\n".join(bad)


def test_nav_lists_every_docs_page():
    text = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    nav = text.split("\nnav:", 1)
    assert len(nav) == 2, "mkdocs.yml has no nav"
    listed = set(re.findall(r"[\w./-]+\.md\b", nav[1]))
    pages = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")}
    assert pages - listed == set(), f"docs pages missing from mkdocs.yml nav: {sorted(pages - listed)}"
    assert listed - pages == set(), f"mkdocs.yml nav names pages that do not exist: {sorted(listed - pages)}"


def test_named_code_exists():
    # a module, function or file the docs name must still be there after a refactor
    import importlib

    bad = []
    for md in _markdown_files():
        text = md.read_text(encoding="utf-8")
        for name in sorted(set(re.findall(r"\b((?:engine|kernels)(?:\.[A-Za-z_]\w*)+)", text))):
            parts = name.split(".")
            for i in range(len(parts), 0, -1):
                try:
                    obj = importlib.import_module(".".join(parts[:i]))
                    break
                except ModuleNotFoundError:
                    continue
            try:
                for attr in parts[i:]:
                    obj = getattr(obj, attr)
            except AttributeError:
                bad.append(f"{md.relative_to(ROOT)}: {name}")
        for path in sorted(set(re.findall(r"`((?:engine|kernels|tests|benchmarks|config)/[^`\s*<]*)`", text))):
            if not (ROOT / path).exists():
                bad.append(f"{md.relative_to(ROOT)}: {path}")
    assert not bad, "the docs name code or files that do not exist:\n" + "\n".join(bad)


def _allowed(message):
    """The names listed in an error's "(allowed: a, b, c)" part."""
    m = re.search(r"\(allowed: ([^)]*)\)", message)
    assert m, f"no '(allowed: ...)' in the error message: {message}"
    return [k.strip() for k in m.group(1).split(",")]


def test_every_configuration_key_is_documented():
    # the keys as the reader itself lists them in its errors, so that a new key or section fails
    # here until docs/configuration.md describes it
    from engine.config import parse_config
    from engine.errors import InputError

    with pytest.raises(InputError) as err:
        parse_config({"no_such_section": {}})
    page = (DOCS / "configuration.md").read_text(encoding="utf-8")
    missing = []
    for section in _allowed(str(err.value)):
        part = page.split(f"## `[{section}]`", 1)
        if len(part) != 2:
            missing.append(f"[{section}] (no section heading '## `[{section}]`')")
            continue
        body = part[1].split("\n## ", 1)[0]
        with pytest.raises(InputError) as err_key:
            parse_config({section: {"no_such_key": 1}})
        missing += [f"[{section}] {k}" for k in _allowed(str(err_key.value)) if f"`{k}`" not in body]
    assert not missing, f"docs/configuration.md does not document: {', '.join(missing)}"


def test_every_sweep_key_is_documented(tmp_path, capsys):
    from engine.cli import main

    bad_key = tmp_path / "bad_key.toml"
    bad_key.write_text('[sweep]\nno_such_key = 1\n', encoding="utf-8")
    bad_field = tmp_path / "bad_field.toml"
    bad_field.write_text('[sweep]\n[[sweep.parameter]]\nkey = "carbon.orc_efficiency"\nno_such_field = 1\n',
                         encoding="utf-8")
    keys = []
    for f in (bad_key, bad_field):
        with pytest.raises(SystemExit) as exit_:
            sys.exit(main(["sweep", str(f), "--out", str(tmp_path / "out")]))
        assert exit_.value.code == 2
        keys += _allowed(capsys.readouterr().err)
    page = (DOCS / "sweeps.md").read_text(encoding="utf-8")
    missing = [k for k in keys if f"`{k}`" not in page and f"[[sweep.{k}]]" not in page]
    assert not missing, f"docs/sweeps.md does not document the sweep-file keys: {', '.join(missing)}"


def _scanned_files():
    for name in SCANNED:
        p = ROOT / name
        if p.is_file():
            yield p
        elif p.is_dir():
            for f in sorted(p.rglob("*")):
                if f.is_file() and f.suffix not in SKIP_SUFFIXES and not SKIP_DIRS & set(f.parts):
                    yield f


def test_no_reference_outside_the_repository():
    hits = []
    for f in _scanned_files():
        if f == Path(__file__).resolve():
            continue  # its examples below are what the pattern must find
        try:
            text = f.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # binary data
        for m in OUTSIDE.finditer(text):
            line = text.count("\n", 0, m.start()) + 1
            hits.append(f"{f.relative_to(ROOT)}:{line}: {text.splitlines()[line - 1].strip()[:120]}")
    assert not hits, ("references to files outside the repository (point to the docs/ page that holds "
                      "the content instead):\n" + "\n".join(hits))


@pytest.mark.parametrize("text, found", [
    ("see STYLE.md rule 11", True),
    ("(DESIGN.md \"Outputs\")", True),
    ("AERMOD_NOTES 4", True),
    ("``shared/AERMOD_NOTES.md``", True),
    ("inputs in ../shared/data", True),
    ("/work/shared/data/aermod", True),
    ("docs/design.md, rule 11", False),
    ("a shared disk; shared_inputs/ and memory-shared/", False),
])
def test_outside_pattern(text, found):
    # the pattern itself: the scan above is only as good as this
    assert bool(OUTSIDE.search(text)) is found
