#!/usr/bin/env python3
"""lint.docs_refs: every reference a reader follows stays inside the repository and resolves.

Over the tracked files (and new files not ignored), it fails when
  1. a file names a document outside the repository: the steering repository's design, domain or style
     file, or a path into `../shared`;
  2. a citation `docs/NAME.md §N` (or `§N.M`, or a list `docs/NAME.md §3, §5`) names a file that does not
     exist or a section that file does not have — a section is a heading that starts with its number
     (`## 3. Facts are tables`, `### 10.2 Tabel 8`); inside docs/*.md a bare `§N` cites the file itself;
  3. a citation of a section by its title — `docs/reliability.md, "Rule changes"`, `README, "Topics"` —
     names a heading (or a paragraph's bold lead-in; a heading's trailing parenthesis may be left out) that
     the file does not have; a bare README is the nearest one up the tree, in a README the top-level one;
  4. a Markdown file links (`[text](target)`) to a relative path that does not exist, or to an anchor
     (`file.md#heading`, `#heading`) that is not one of that file's headings, or names a `*.md` file in
     backticks that does not exist.

usage: docs_refs.py SOURCE_DIR        exit 0 clean, 1 with one line per problem (FILE:LINE: what)
       docs_refs.py --self-test        checks that each kind of problem above is found, and a clean tree passes
"""
import os
import re
import subprocess
import sys

# Built from parts so that this file does not match itself.
OUTSIDE = re.compile(r"\b(?:" + "|".join(n + r"\.md" for n in ("DES" + "IGN", "DOM" + "AIN", "STY" + "LE")) +
                     r")\b|\.\./" + "shared\\b|/work/" + "shared\\b")
CITE = re.compile(r"((?:docs/)?[\w-]+\.md)((?:(?:\s*,\s*|\s+and\s+|\s+or\s+|\s*[–-]\s*|\s+)§\s?\d+(?:\.\d+)*)+)")
SECTION = re.compile(r"§\s?(\d+(?:\.\d+)*)")
BARE = re.compile(r"(?<![\w.§])§\s?(\d+(?:\.\d+)*)")
RFC_BEFORE = re.compile(r"(?:RFC|ISO|section|Section)\s*[\d.:-]*\s*$")
LINK = re.compile(r"(?<!!)\[[^\]\n]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
TICKED_MD = re.compile(r"`([\w./-]+\.md)`")
TITLED = re.compile(r"((?:[\w.-]+/)*(?:README(?:\.md)?|[\w-]+\.md))\s*,?\s*\(?\"([^\"]+)\"")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
SECTION_HEADING = re.compile(r"^(\d+(?:\.\d+)*)\.?(?:\s|$)")


def tracked_files(root):
    try:
        out = subprocess.run(["git", "-C", root, "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
                             check=True, capture_output=True).stdout
        names = [n for n in out.decode().split("\0") if n]
    except (OSError, subprocess.CalledProcessError):
        names = []
        for d, dirs, files in os.walk(root):
            dirs[:] = [x for x in dirs if not x.startswith((".", "build"))]
            names += [os.path.relpath(os.path.join(d, f), root) for f in files]
    return sorted(n for n in names if os.path.isfile(os.path.join(root, n)))


def read_text(path):
    with open(path, "rb") as f:
        data = f.read()
    if b"\0" in data[:8192]:
        return None
    return data.decode("utf-8", errors="replace")


def slug(heading):
    """GitHub's anchor for a heading: lower case, punctuation but '-' and '_' dropped, spaces to '-'."""
    text = re.sub(r"`([^`]*)`", r"\1", heading)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = text.strip().lower()
    text = "".join(c for c in text if c.isalnum() or c in " -_")
    return text.replace(" ", "-")


def title_key(title):
    """A heading as a citation names it: without its section number and backticks, in lower case."""
    title = re.sub(r"^\d+(?:\.\d+)*\.?\s+", "", title.replace("`", ""))
    return title.strip().lower()


def titled_target(root, rel, name):
    """The file a `NAME, "Title"` citation in `rel` means, or None."""
    if name in ("README", "README.md"):
        if os.path.basename(rel) == "README.md":
            return "README.md"
        d = os.path.dirname(rel)
        while True:
            cand = os.path.join(d, "README.md") if d else "README.md"
            if os.path.isfile(os.path.join(root, cand)):
                return cand
            if not d:
                return None
            d = os.path.dirname(d)
    for cand in (name, os.path.join(os.path.dirname(rel), name)):
        cand = os.path.normpath(cand)
        if os.path.isfile(os.path.join(root, cand)):
            return cand
    return None


class Doc:
    def __init__(self, text):
        self.sections = set()
        self.anchors = set()
        self.titles = set()
        seen = {}
        fenced = False
        for line in text.splitlines():
            if line.lstrip().startswith("```"):
                fenced = not fenced
                continue
            m = None if fenced else HEADING.match(line)
            if not m:
                bold = None if fenced else re.match(r"^\*\*([^*]+?)\.?\*\*", line)
                if bold:  # a paragraph's bold lead-in ("**Go** — ...") is cited like a heading
                    self.titles.add(title_key(bold.group(1)))
                continue
            title = m.group(2)
            s = SECTION_HEADING.match(title)
            if s:
                self.sections.add(s.group(1))
            self.titles.add(title_key(title))
            base = slug(title)
            n = seen.get(base, 0)
            seen[base] = n + 1
            self.anchors.add(base if n == 0 else f"{base}-{n}")


def check(root):
    """The problems found under `root`, and what was checked."""
    files = tracked_files(root)
    self_name = os.path.relpath(os.path.abspath(__file__), root)
    docs_cache = {}

    def doc(rel):
        if rel not in docs_cache:
            p = os.path.join(root, rel)
            docs_cache[rel] = Doc(read_text(p) or "") if os.path.isfile(p) else None
        return docs_cache[rel]

    problems = []
    checked = {"citations": 0, "links": 0}
    for rel in files:
        if rel == self_name or rel.startswith("tests/fuzz/corpus/"):
            continue
        text = read_text(os.path.join(root, rel))
        if text is None:
            continue
        is_md = rel.endswith(".md")
        in_docs = is_md and rel.startswith("docs/")
        fenced = False
        for lineno, line in enumerate(text.splitlines(), 1):
            where = f"{rel}:{lineno}"
            m = OUTSIDE.search(line)
            if m:
                problems.append(f"{where}: names '{m.group(0)}', which is outside the repository "
                                "(cite docs/design.md or docs/domain.md)")
            cited_spans = []
            for m in CITE.finditer(line):
                name = m.group(1)
                target = name if name.startswith("docs/") else ("docs/" + name if in_docs else None)
                if target is None or not os.path.isfile(os.path.join(root, target)):
                    if name.startswith("docs/") or in_docs:
                        problems.append(f"{where}: cites {name}, which does not exist")
                    continue
                cited_spans.append(m.span())
                for s in SECTION.finditer(m.group(2)):
                    checked["citations"] += 1
                    if s.group(1) not in doc(target).sections:
                        problems.append(f"{where}: cites {target} §{s.group(1)}, which has no such section")
            for m in TITLED.finditer(line):
                target = titled_target(root, rel, m.group(1))
                if target is None or not target.endswith(".md"):
                    continue
                checked["citations"] += 1
                cited = title_key(m.group(2))
                if not any(t == cited or t.startswith(cited + " ") for t in doc(target).titles):
                    problems.append(f"{where}: cites {target}, \"{m.group(2)}\", which has no such heading")
            if in_docs:
                for s in BARE.finditer(line):
                    if any(a <= s.start() < b for a, b in cited_spans) or RFC_BEFORE.search(line[:s.start()]):
                        continue
                    checked["citations"] += 1
                    if s.group(1) not in doc(rel).sections:
                        problems.append(f"{where}: cites §{s.group(1)} of this file, which has no such section")
            if not is_md:
                continue
            if line.lstrip().startswith("```"):
                fenced = not fenced
                continue
            if fenced:
                continue
            base = os.path.dirname(rel)
            for m in LINK.finditer(line):
                target = m.group(1)
                if re.match(r"^[a-z][a-z0-9+.-]*:", target):
                    continue
                checked["links"] += 1
                path, _, anchor = target.partition("#")
                dest = os.path.normpath(os.path.join(base, path)) if path else rel
                if not os.path.exists(os.path.join(root, dest)):
                    problems.append(f"{where}: links to {target}, which does not exist")
                    continue
                if anchor and dest.endswith(".md") and anchor not in doc(dest).anchors:
                    problems.append(f"{where}: links to {target}: {dest} has no heading '#{anchor}'")
            for m in TICKED_MD.finditer(line):
                name = m.group(1)
                if name.lower().startswith(("build/", "build-")) or "/" not in name:
                    continue
                checked["links"] += 1
                if not (os.path.exists(os.path.join(root, name)) or
                        os.path.exists(os.path.join(root, base, name))):
                    problems.append(f"{where}: names {name}, which does not exist")
    return problems, f"{len(files)} files, {checked['citations']} section citations, {checked['links']} links"


SELF_TEST_TREE = {
    "README.md": "# t\n\n## Topics\n\nSee [design](docs/design.md#2-keys) and `docs/design.md`.\n",
    "docs/design.md": "# Design\n\n## 1. What\n\n### 1.1 Sub\n\n## 2. Keys\n\n**Go** — lead-in.\n\nSee §1.1 and RFC 4180 §2.\n",
    "src/a.c": "/* docs/design.md §2, §1.1 and README, \"Topics\"; docs/design.md, \"Go\". */\n",
}
SELF_TEST_BAD = {
    "src/outside.c": ("/* see " + "DES" + "IGN.md */\n", "outside the repository"),
    "src/shared.sh": ("# ../" + "shared/data\n", "outside the repository"),
    "src/section.c": ("/* docs/design.md §3 */\n", "no such section"),
    "src/list.c": ("/* docs/design.md §1, §9 */\n", "§9, which has no such section"),
    "src/nofile.c": ("/* docs/nothing.md §1 */\n", "does not exist"),
    "src/title.c": ("/* README, \"Nothing\" */\n", "no such heading"),
    "docs/self.md": ("# s\n\n## 1. One\n\nAs §2 says.\n", "§2 of this file"),
    "docs/link.md": ("# l\n\n[x](missing.md)\n", "does not exist"),
    "docs/anchor.md": ("# a\n\n[x](design.md#9-nine)\n", "has no heading"),
    "docs/ticked.md": ("# t\n\nsee `docs/missing.md`\n", "does not exist"),
}


def self_test():
    import tempfile

    def write(root, files):
        for name, text in files.items():
            os.makedirs(os.path.join(root, os.path.dirname(name)), exist_ok=True)
            with open(os.path.join(root, name), "w", encoding="utf-8") as f:
                f.write(text)

    failed = 0
    with tempfile.TemporaryDirectory() as root:
        write(root, SELF_TEST_TREE)
        problems, _ = check(root)
        if problems:
            print("self-test: a clean tree reported problems:", *problems, sep="\n  ")
            failed += 1
        for name, (text, expected) in SELF_TEST_BAD.items():
            write(root, {name: text})
            problems, _ = check(root)
            os.remove(os.path.join(root, name))
            if not any(p.startswith(name + ":") and expected in p for p in problems):
                print(f"self-test: {name} ({text.strip()!r}) not reported as '{expected}': {problems}")
                failed += 1
    print(f"lint.docs_refs self-test: {len(SELF_TEST_BAD) + 1 - failed} of {len(SELF_TEST_BAD) + 1} cases right")
    return 1 if failed else 0


def main():
    if sys.argv[1:] == ["--self-test"]:
        return self_test()
    if len(sys.argv) != 2:
        print(__doc__.strip().splitlines()[-2], file=sys.stderr)
        return 2
    problems, summary = check(os.path.abspath(sys.argv[1]))
    for p in problems:
        print(p)
    print(f"lint.docs_refs: {summary}; {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
