"""House rules that no single module's tests would notice breaking: every
code module names its tests with a ``test-case-name`` line (Twisted's
habit: on the code module, naming the test modules), every named test
module exists, and no test module names itself."""

from __future__ import annotations

import re
from pathlib import Path

from twisted.trial import unittest

ROOT = Path(__file__).resolve().parent.parent
LINE = re.compile(r"^# -\*- test-case-name: ([\w.,]+) -\*-$", re.MULTILINE)


def _named(path: Path) -> list[str]:
    found = LINE.search(path.read_text(encoding="utf-8"))
    return found.group(1).split(",") if found else []


class TestCaseNameTests(unittest.TestCase):
    def test_every_code_module_names_existing_tests(self) -> None:
        """Each module under luna2d/ with code carries the line, and each
        test module it names is a file under tests/."""
        missing, unknown = [], []
        for path in sorted((ROOT / "luna2d").rglob("*.py")):
            text = path.read_text(encoding="utf-8")
            if path.name == "__init__.py" and len(text.strip().splitlines()) <= 5:
                continue  # a package marker with a docstring, no code
            names = _named(path)
            if not names:
                missing.append(str(path.relative_to(ROOT)))
            for name in names:
                target = ROOT.joinpath(*name.split("."))
                if not target.with_suffix(".py").is_file() and not target.is_dir():
                    unknown.append(f"{path.relative_to(ROOT)}: {name}")
        self.assertEqual(missing, [])
        self.assertEqual(unknown, [])

    def test_no_test_module_names_itself(self) -> None:
        """The line belongs on code modules; a test module carrying one (as
        a comment or at the head of its docstring) is reported."""
        carriers = [
            str(path.relative_to(ROOT))
            for path in sorted((ROOT / "tests").rglob("*.py"))
            if "test-case-name" in path.read_text(encoding="utf-8").split("\n", 3)[0]
            or LINE.search(path.read_text(encoding="utf-8"))
        ]
        self.assertEqual(carriers, [])
