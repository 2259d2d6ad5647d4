"""Writes lamina/_core.pyi, generated from the importable lamina._core, into the directory given.

pybind11-stubgen writes enum members as ``name: typing.ClassVar[E]``, which mypy reads as an
enum with no members, and adds a ``__new__`` the enum does not define; both are rewritten to the
typing spec's ``name = value`` form. The module has no ``__all__`` at run time, so the stub's
goes. Usage: python scripts/gen_stubs.py OUT_DIR
"""

import pathlib
import re
import subprocess
import sys


def fix_enums(text: str) -> str:
    lines, out, enum = text.splitlines(), [], None
    i = 0
    while i < len(lines):
        line = lines[i]
        header = re.match(r"class (\w+)\(enum\.Enum\):$", line)
        if header:
            enum = header.group(1)
        elif not line.startswith(" "):
            enum = None
        if line.startswith("__all__"):
            i += 1
            continue
        if enum and line == "    @classmethod" and lines[i + 1].startswith("    def __new__("):
            i += 3  # the decorator, the def line and its "..." body
            continue
        member = re.match(rf"    (\w+): typing\.ClassVar\[{enum}\]$", line) if enum else None
        out.append(f"    {member.group(1)} = ..." if member else line)
        i += 1
    return "\n".join(out) + "\n"


def main(out_dir: str) -> None:
    subprocess.run([sys.executable, "-m", "pybind11_stubgen", "--exit-code", "-o", out_dir, "lamina._core"],
                   check=True, stdout=subprocess.DEVNULL)
    path = pathlib.Path(out_dir) / "lamina" / "_core.pyi"
    path.write_text(fix_enums(path.read_text()))


if __name__ == "__main__":
    main(sys.argv[1])
