"""A small reader of Dockerfiles and .dockerignore files, enough for the repository's own: there is
no Docker engine on our machines, so the image's properties are checked on its source.

Dockerfile: one instruction per logical line (a trailing backslash continues it; comment lines,
including parser directives, are dropped, also inside a continuation), keyword case-insensitive,
exec form (a JSON array) or shell form. Heredocs and a changed escape character are not supported
and are refused rather than misread.

.dockerignore: Docker's rules as far as this repository needs them: patterns relative to the
context root, `*` and `?` within one path segment, `**` across any number of segments, `!` to
re-include; the last matching pattern decides, and excluding a directory excludes what is in it.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Instruction:
    line: int  # where it starts, 1-based
    keyword: str  # upper case: FROM, RUN, COPY...
    arguments: str  # the rest of the logical line, continuations joined with a space

    def exec_form(self) -> list[str] | None:
        """The JSON array of an exec-form instruction (CMD ["a", "b"]), else None."""
        text = self.arguments.strip()
        if not text.startswith("["):
            return None
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            return None  # Docker, too, treats an invalid array as shell form
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            return None
        return value

    def words(self) -> list[str]:
        """The arguments split like a shell would (for COPY, ENV, HEALTHCHECK options...)."""
        return shlex.split(self.arguments)

    def options(self) -> tuple[dict[str, str], list[str]]:
        """`--name=value` flags before the first other word, and the words after them."""
        words = self.words()
        flags: dict[str, str] = {}
        while words and words[0].startswith("--"):
            name, _, value = words.pop(0)[2:].partition("=")
            flags[name] = value
        return flags, words


class DockerfileError(Exception):
    pass


def parse_dockerfile(text: str) -> list[Instruction]:
    if re.match(r"\s*#\s*escape\s*=", text):
        raise DockerfileError("a changed escape character is not supported")
    instructions: list[Instruction] = []
    parts: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not parts):
            continue  # comments go, even inside a continuation; so do blank lines
        if not parts:
            start = number
        continued = stripped.endswith("\\")
        parts.append(stripped[:-1].strip() if continued else stripped)
        if not continued:
            instructions.append(_instruction(start, " ".join(p for p in parts if p)))
            parts = []
    if parts:
        raise DockerfileError(f"line {start}: the file ends inside a continued instruction")
    return instructions


def _instruction(line: int, text: str) -> Instruction:
    keyword, _, arguments = text.partition(" ")
    if "<<" in arguments and keyword.upper() in {"RUN", "COPY"}:
        raise DockerfileError(f"line {line}: heredocs are not supported")
    return Instruction(line, keyword.upper(), arguments.strip())


def env_assignments(instruction: Instruction) -> dict[str, str]:
    """ENV KEY=value KEY2="two words", or the legacy single `ENV KEY value`."""
    words = instruction.words()
    if words and "=" not in words[0]:
        key, _, value = instruction.arguments.strip().partition(" ")
        return {key: value.strip()}
    return dict(word.split("=", 1) for word in words)


# --- .dockerignore -----------------------------------------------------------------------------


@dataclass(frozen=True)
class IgnoreRule:
    pattern: re.Pattern[str]
    exclude: bool  # False for a `!pattern` exception


def parse_dockerignore(text: str) -> list[IgnoreRule]:
    rules: list[IgnoreRule] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exclude = not line.startswith("!")
        pattern = line.lstrip("!").strip().strip("/")
        pattern = re.sub(r"^(\./)+", "", pattern)
        rules.append(IgnoreRule(re.compile(_glob_regex(pattern)), exclude))
    return rules


def _glob_regex(pattern: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[" and (end := pattern.find("]", i + 1)) > i:
            body = pattern[i + 1 : end]
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
            i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return "".join(out) + r"\Z"


def is_ignored(rules: list[IgnoreRule], path: str) -> bool:
    """Whether `path` (relative to the context, `/`-separated) stays out of the build context."""
    parts = path.strip("/").split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    ignored = False
    for rule in rules:
        if any(rule.pattern.match(candidate) for candidate in candidates):
            ignored = rule.exclude
    return ignored


def context_files(root: Path, rules: list[IgnoreRule], source: str) -> list[Path]:
    """The files of `source` (a file or a directory of the context) that the build sees."""
    start = root / source
    paths = [start] if start.is_file() else sorted(p for p in start.rglob("*") if p.is_file())
    return [p for p in paths if not is_ignored(rules, p.relative_to(root).as_posix())]


# --- the image a Dockerfile describes ----------------------------------------------------------


@dataclass(frozen=True)
class Image:
    """Questions about a single-stage Dockerfile's instructions."""

    instructions: list[Instruction]

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def one(self, keyword: str) -> Instruction:
        found = self.all(keyword)
        assert len(found) == 1, f"expected one {keyword}, found {len(found)}"
        return found[0]

    def index(self, instruction: Instruction) -> int:
        return self.instructions.index(instruction)

    @property
    def env(self) -> dict[str, str]:
        merged: dict[str, str] = {}
        for instruction in self.all("ENV"):
            merged.update(env_assignments(instruction))
        return merged

    @property
    def workdir(self) -> str:
        return self.all("WORKDIR")[-1].arguments

    @property
    def user(self) -> tuple[int, int]:
        """USER as uid and gid; both must be numeric."""
        uid, _, gid = self.all("USER")[-1].arguments.partition(":")
        assert uid.isdigit(), f"USER should be numeric, got {uid!r}"
        assert gid.isdigit(), f"USER should name a numeric group, got {gid!r}"
        return int(uid), int(gid)

    @property
    def user_name(self) -> str:
        """The name given to `useradd` (its last word)."""
        creates_user = next(i for i in self.all("RUN") if "useradd" in i.arguments)
        return creates_user.words()[-1]

    def copies(self) -> list[tuple[Instruction, list[str], str]]:
        """(instruction, sources, destination) of every COPY."""
        result = []
        for instruction in self.all("COPY"):
            _, words = instruction.options()
            result.append((instruction, words[:-1], words[-1]))
        return result

    def healthcheck(self) -> tuple[dict[str, str], list[str]]:
        """The HEALTHCHECK's options and the argv Docker runs for it."""
        instruction = self.one("HEALTHCHECK")
        options, words = instruction.options()
        assert words[:1] == ["CMD"], instruction
        command = instruction.arguments.split("CMD", 1)[1].strip()
        as_exec = Instruction(instruction.line, "CMD", command).exec_form()
        return options, as_exec if as_exec is not None else ["/bin/sh", "-c", command]
