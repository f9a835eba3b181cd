#!/usr/bin/env python3
"""Write the Debian copyright file of gatehouse's package (DEP-5).

    python3 packaging/copyright.py [--features F] > .../copyright

/usr/bin/gatehouse links its Rust dependencies statically, so their
licences travel with the package. This reads `cargo metadata` (offline: the
lock file and the registry sources the build already has), walks the
gatehouse crate's normal dependencies for this platform (build
dependencies and proc-macro crates do not end up in the binary and are not
walked), and writes:

  * packaging/debian/copyright (gatehouse's own paragraphs) first;
  * one `Files: vendor/NAME-VERSION/*` paragraph per crate, the layout
    `cargo vendor --versioned-dirs` gives the sources, with the copyright
    lines of the crate's own licence files (else its authors) and its
    licence expression in DEP-5 words;
  * paragraphs for what is linked besides crates: the Rust standard library,
    and SQLite (public domain) bundled by libsqlite3-sys;
  * one stand-alone License paragraph per licence named: Apache-2.0 refers
    to /usr/share/common-licenses, the others carry the text as a crate
    ships it (copyright lines removed: they are in the Files paragraphs).

A licence it has no text for stops the build: add its file name below.
The feature set is cargo's workspace-wide resolution, so a crate another
workspace member enables may be listed although the binary lacks it:
the list can only be too long, never too short.
"""

import argparse
import json
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

# SPDX identifier -> DEP-5 short name (Debian calls the MIT licence Expat).
DEP5_NAME = {
    "Apache-2.0": "Apache-2.0",
    "MIT": "Expat",
    "BSD-2-Clause": "BSD-2-clause",
    "BSD-3-Clause": "BSD-3-clause",
    "Zlib": "Zlib",
    "Unicode-3.0": "Unicode-3.0",
    "Unicode-DFS-2016": "Unicode-DFS-2016",
    "Unlicense": "Unlicense",
    "ISC": "ISC",
    "BSL-1.0": "BSL-1.0",
    "CC0-1.0": "CC0-1.0",
    "MPL-2.0": "MPL-2.0",
}
# Licences Debian ships in /usr/share/common-licenses: referred to there.
COMMON = {"Apache-2.0", "CC0-1.0", "MPL-2.0"}
# Where a crate keeps the text of a licence (file names, lower case, tried
# in order), for a crate under several licences.
TEXT_FILES = {
    "Expat": ["license-mit", "license-mit.md", "license-mit.txt", "license.mit"],
    "BSD-2-clause": ["license-bsd", "license-bsd-2-clause"],
    "BSD-3-clause": ["license-bsd", "license-bsd-3-clause"],
    "Zlib": ["license-zlib", "license-zlib.md"],
    "Unicode-3.0": ["license-unicode"],
    "Unicode-DFS-2016": ["license-unicode"],
    "Unlicense": ["unlicense"],
    "ISC": ["license-isc"],
    "BSL-1.0": ["license-boost", "license-bsl"],
}
# A crate under one licence keeps its text in one of these.
SINGLE_FILES = ["license", "license.md", "license.txt", "licence", "copying"]
LLVM = "Apache-2.0 with LLVM exception"


class Fail(Exception):
    pass


def tokens(expr):
    return re.findall(r"\(|\)|[^\s()]+", expr.replace("/", " OR "))


def parse(expr):
    """SPDX expression -> tree: ("or"|"and", [children]) or a leaf name."""
    toks = tokens(expr)
    pos = 0

    def atom():
        nonlocal pos
        if pos >= len(toks):
            raise Fail(f"licence expression `{expr}` ends early")
        t = toks[pos]
        pos += 1
        if t == "(":
            node = disjunction()
            if pos >= len(toks) or toks[pos] != ")":
                raise Fail(f"licence expression `{expr}`: unbalanced parentheses")
            pos += 1
            return node
        if pos < len(toks) and toks[pos].upper() == "WITH":
            pos += 1
            exception = toks[pos] if pos < len(toks) else ""
            pos += 1
            if (t, exception) != ("Apache-2.0", "LLVM-exception"):
                raise Fail(f"licence exception `{t} WITH {exception}` is not known here")
            return LLVM
        if t not in DEP5_NAME:
            raise Fail(f"licence `{t}` (in `{expr}`) is not known here: add it to DEP5_NAME")
        return DEP5_NAME[t]

    def conjunction():
        nonlocal pos
        parts = [atom()]
        while pos < len(toks) and toks[pos].upper() == "AND":
            pos += 1
            parts.append(atom())
        return parts[0] if len(parts) == 1 else ("and", parts)

    def disjunction():
        nonlocal pos
        parts = [conjunction()]
        while pos < len(toks) and toks[pos].upper() == "OR":
            pos += 1
            parts.append(conjunction())
        return parts[0] if len(parts) == 1 else ("or", parts)

    tree = disjunction()
    if pos != len(toks):
        raise Fail(f"licence expression `{expr}`: unexpected `{toks[pos]}`")
    return tree


def render(tree):
    """DEP-5 words: `A or B`, `A and B`, `A or B, and C` (comma groups)."""
    if isinstance(tree, str):
        return tree
    op, parts = tree
    if op == "or":
        if any(not isinstance(p, str) for p in parts):
            raise Fail("an AND inside an OR cannot be written in DEP-5 words")
        return " or ".join(parts)
    return (", and " if any(not isinstance(p, str) for p in parts) else " and ").join(
        render(p) for p in parts
    )


def leaves(tree):
    if isinstance(tree, str):
        return {tree}
    return set().union(*(leaves(p) for p in tree[1]))


def licence_files(directory):
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return {}
    return {
        n.lower(): os.path.join(directory, n)
        for n in names
        if re.match(r"(?i)^(licen[cs]e|copying|unlicense|copyright)", n)
        and os.path.isfile(os.path.join(directory, n))
    }


COPYRIGHT_LINE = re.compile(r"^\s*copyright\s+(?:\(c\)\s*|©\s*)?(.+)$", re.I)
# Licence prose that happens to begin a line with "copyright".
PROSE = re.compile(r"(licen[cs]e|notice|statement|and\b|owner|holder|of\b|to\b|in\b|on\b)", re.I)


def holder(line):
    """The holder named by a copyright notice line, or None."""
    m = COPYRIGHT_LINE.match(line)
    if not m or PROSE.match(m.group(1)):
        return None
    return m.group(1).strip()


def notices(files):
    """The copyright lines of a crate's licence files (templates left out)."""
    found = []
    for path in files.values():
        try:
            text = open(path, encoding="utf-8", errors="replace").read()
        except OSError:
            continue
        for line in text.splitlines():
            h = holder(line)
            # Templates ("[yyyy] [name of copyright owner]") are not notices.
            if not h or re.search(r"[\[{<]|yyyy", h, re.I):
                continue
            if h not in found:
                found.append(h)
    return found


def strip_notices(text):
    lines = [l.rstrip() for l in text.expandtabs().splitlines()]
    lines = [l for l in lines if holder(l) is None]
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


def field_text(lines):
    """Continuation lines of a DEP-5 field (empty lines as ` .`)."""
    return "\n".join(" " + l if l.strip() else " ." for l in lines)


def walk(meta):
    packages = {p["id"]: p for p in meta["packages"]}
    nodes = {n["id"]: n for n in meta["resolve"]["nodes"]}
    root = next(p["id"] for p in meta["packages"] if p["name"] == "gatehouse" and p["id"] in meta["workspace_members"])
    seen, stack, linked = set(), [root], []
    while stack:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.add(pid)
        p = packages[pid]
        if any("proc-macro" in t["kind"] for t in p["targets"]):
            continue  # runs in the compiler, not in the binary
        if pid not in meta["workspace_members"]:
            linked.append(p)
        for d in nodes[pid]["deps"]:
            if any(k["kind"] is None for k in d["dep_kinds"]):
                stack.append(d["pkg"])
    return sorted(linked, key=lambda p: (p["name"], p["version"]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--features", default="", help="the gatehouse crate's features, as for cargo build")
    ap.add_argument("--target", default=None, help="target triple (default: the host's)")
    args = ap.parse_args()
    target = args.target or re.search(
        r"^host: (\S+)$", subprocess.run(["rustc", "-vV"], capture_output=True, text=True, check=True).stdout, re.M
    ).group(1)
    cmd = ["cargo", "metadata", "--format-version", "1", "--locked", "--offline", "--filter-platform", target]
    if args.features:
        cmd += ["--features", ",".join(f"gatehouse/{f}" for f in re.split(r"[ ,]+", args.features) if f)]
    meta = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=os.path.join(HERE, "..")).stdout)
    rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True, check=True).stdout.strip()

    own = open(os.path.join(HERE, "debian", "copyright"), encoding="utf-8").read().rstrip("\n")
    paragraphs = [own]
    used = {}  # DEP-5 name -> the first crate's licence files that may hold its text
    crates = walk(meta)
    for p in crates:
        expr = p.get("license")
        if not expr:
            raise Fail(f"crate `{p['name']}` {p['version']} declares no SPDX licence: write its paragraph by hand")
        tree = parse(expr)
        files = licence_files(os.path.dirname(p["manifest_path"]))
        for name in sorted(leaves(tree)):
            used.setdefault(name, [])
            used[name].append((p["name"], files, len(leaves(tree)) == 1))
        holders = notices(files) or [a for a in p.get("authors", []) if a.strip()] or [f"the {p['name']} authors"]
        para = [
            f"Files: vendor/{p['name']}-{p['version']}/*",
            "Copyright: " + holders[0],
            *(" " + h for h in holders[1:]),
            f"License: {render(tree)}",
            f"Comment: the crate {p['name']} {p['version']} (crates.io), linked into /usr/bin/gatehouse",
        ]
        paragraphs.append("\n".join(para))
        if p["name"] == "libsqlite3-sys":
            paragraphs.append(
                "\n".join(
                    [
                        f"Files: vendor/{p['name']}-{p['version']}/sqlite3/*",
                        "Copyright: none: the authors of SQLite disclaim copyright",
                        "License: public-domain",
                        "Comment: SQLite, compiled from the crate's bundled sources into /usr/bin/gatehouse",
                    ]
                )
            )
            used.setdefault("public-domain", [])
    paragraphs.append(
        "\n".join(
            [
                "Files: rust/library/*",
                "Copyright: The Rust Project Developers",
                "License: Expat or Apache-2.0",
                f"Comment: the Rust standard library (std, core, alloc), linked into /usr/bin/gatehouse by {rustc}",
            ]
        )
    )
    used.setdefault("Expat", [])

    for name in sorted(used):
        if name == "Apache-2.0":
            continue  # packaging/debian/copyright has it (gatehouse's own licence)
        if name in COMMON:
            body = [f"On Debian systems, the full text of {name} can be found in /usr/share/common-licenses/{name}."]
        elif name == "public-domain":
            body = [
                "The author disclaims copyright to this source code.  In place of",
                "a legal notice, here is a blessing:",
                "",
                "   May you do good and not evil.",
                "   May you find forgiveness for yourself and forgive others.",
                "   May you share freely, never taking more than you give.",
            ]
        else:
            # Of the crates that ship the text, the shortest file: the
            # licence itself rather than one crate's additions to it.
            candidates = []
            for crate, files, single in used[name]:
                wanted = ["license-apache-2.0_with_llvm-exception"] if name == LLVM else TEXT_FILES.get(name, [])
                wanted = wanted + (SINGLE_FILES if single else [])
                path = next((files[w] for w in wanted if w in files), None)
                if path:
                    candidates.append((os.path.getsize(path), crate, path))
            body = None
            for _, crate, path in sorted(candidates)[:1]:
                if path:
                    text = open(path, encoding="utf-8", errors="replace").read()
                    if name == LLVM:
                        cut = text.find("LLVM Exceptions to the Apache 2.0 License")
                        text = text[text.rfind("\n", 0, cut) + 1 :] if cut >= 0 else text
                    body = strip_notices(text)
                    if name == LLVM:
                        body = [
                            "On Debian systems, the full text of the Apache License, Version 2.0",
                            "can be found in /usr/share/common-licenses/Apache-2.0; the exception:",
                            "",
                            *body,
                        ]
                    body.append("")
                    body.append(f"(This text as the crate {crate} ships it.)")
                    break
            if not body:
                raise Fail(f"no crate ships the text of `{name}` under a known file name: add it to TEXT_FILES")
        paragraphs.append(f"License: {name}\n" + field_text(body))

    sys.stdout.write("\n\n".join(paragraphs) + "\n")
    print(f"copyright: {len(crates)} crates, {len(used)} licences", file=sys.stderr)


if __name__ == "__main__":
    try:
        main()
    except (Fail, subprocess.CalledProcessError, OSError, StopIteration) as e:
        detail = getattr(e, "stderr", None) or ""
        print(f"copyright.py: {e} {detail}".rstrip(), file=sys.stderr)
        sys.exit(1)
