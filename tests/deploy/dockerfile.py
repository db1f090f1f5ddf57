"""A small Dockerfile reader for the tests: the stages and their instructions, as the
builder sees them (continuation lines joined, comments dropped, build arguments' defaults
substituted into ``FROM``). Enough for this repository's Dockerfile; not every syntax."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field

_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case: FROM, RUN, COPY, ...
    value: str  # the rest of the instruction, its lines joined
    line: int  # where it starts, 1-based

    def exec_form(self) -> list[str]:
        """The JSON array of ``ENTRYPOINT ["a", "b"]``; a shell-form value is refused."""
        parsed = json.loads(self.value)
        if not (isinstance(parsed, list) and all(isinstance(p, str) for p in parsed)):
            raise ValueError(f"line {self.line}: {self.keyword} is not in exec form")
        return parsed


@dataclass
class Stage:
    base: str  # the image it starts FROM, build arguments substituted
    name: str | None  # its `AS name`
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def last(self, keyword: str) -> Instruction | None:
        found = self.all(keyword)
        return found[-1] if found else None

    def args(self) -> dict[str, str]:
        """The stage's `ARG name=default` declarations."""
        return dict(_assignment(i.value) for i in self.all("ARG"))

    def env(self) -> dict[str, str]:
        """Every `ENV k=v ...` of the stage, later ones winning (values as written)."""
        values: dict[str, str] = {}
        for instruction in self.all("ENV"):
            values.update(_assignment(token) for token in shlex.split(instruction.value))
        return values


@dataclass
class Dockerfile:
    global_args: dict[str, str]  # ARGs before the first FROM, with their defaults
    stages: list[Stage]

    def stage(self, name: str) -> Stage:
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise KeyError(name)


def _assignment(text: str) -> tuple[str, str]:
    name, _, value = text.strip().partition("=")
    return name, value.strip('"')


def substitute(text: str, values: dict[str, str]) -> str:
    """``${NAME}`` and ``$NAME`` replaced by ``values[NAME]``, others left as they are."""
    return _VARIABLE.sub(lambda m: values.get(m.group(1) or m.group(2), m.group(0)), text)


def instructions(text: str) -> list[Instruction]:
    """The instructions of ``text``: a line ending in a backslash continues on the next,
    and comment lines (also those inside a continued instruction) are dropped."""
    found: list[Instruction] = []
    parts: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not parts and (not line or line.startswith("#")):
            continue
        if parts and (line.startswith("#") or not line):
            continue
        if not parts:
            start = number
        continued = line.endswith("\\")
        parts.append(line[:-1].strip() if continued else line)
        if not continued:
            keyword, _, value = " ".join(parts).partition(" ")
            found.append(Instruction(keyword.upper(), value.strip(), start))
            parts = []
    if parts:
        raise ValueError(f"line {start}: the last instruction ends in a continuation")
    return found


def parse(text: str) -> Dockerfile:
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for instruction in instructions(text):
        if instruction.keyword == "FROM":
            words = instruction.value.split()
            words = [w for w in words if not w.startswith("--")]  # --platform=...
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(substitute(words[0], global_args), name))
        elif not stages:
            if instruction.keyword != "ARG":
                raise ValueError(f"line {instruction.line}: {instruction.keyword} before FROM")
            global_args.update([_assignment(instruction.value)])
        else:
            stages[-1].instructions.append(instruction)
    return Dockerfile(global_args, stages)
