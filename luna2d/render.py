# -*- test-case-name: tests.boot.test_render -*-
"""The one Jinja2 environment: iPXE scripts and the install script are
rendered from the templates shipped in ``templates/``.

Templates are plain text for iPXE and the shell, so there is no HTML
autoescaping; an undefined variable is an error (``StrictUndefined``), never
a silent blank in a boot script. Compiled templates are kept until
``reload()``, which reads every template again and swaps the new set in only
when all of them compile, so a broken edit never takes booting down.

The spec's template table (which script a machine starts from) is data in
``luna2d.model.boot``, read by the HTTP boot resources and the DHCP server
alike; its names are re-exported here for the resources."""

from __future__ import annotations

import hashlib
import re
import shlex
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2

# The template table's names, re-exported for the boot resources.
from luna2d.model.boot import BOOT_PATHS, DISK, NORMAL, SHORT, boot_entry

__all__ = [
    "BOOT_PATHS",
    "DISK",
    "NORMAL",
    "SHORT",
    "Renderer",
    "boot_entry",
    "default",
    "heredoc_end",
    "ipmitool_word",
    "ipxe_arg",
    "shquote",
    "template_dir",
    "urlpath",
]

_HERE = Path(__file__).resolve().parent


def template_dir() -> Path:
    """Where the templates are: ``luna2d/templates`` once installed (and in
    the source tree, where it links to the top-level ``templates/``), else
    the top-level ``templates/`` of a source checkout."""
    for candidate in (Path(__file__).parent / "templates", _HERE.parent / "templates"):
        if candidate.is_dir():
            return candidate
    raise RuntimeError(f"luna2d: no templates directory beside {_HERE}")


# -- filters -------------------------------------------------------------------------------

_SPACE = re.compile(r"\s+")


def ipxe_arg(value: Any) -> str:
    """A value on one iPXE line: whitespace (newlines too) collapsed to one space."""
    return _SPACE.sub(" ", str(value)).strip()


def shquote(value: Any) -> str:
    """A value as one shell word."""
    return shlex.quote(str(value))


def ipmitool_word(value: Any) -> str:
    """A value as one word of an ``ipmitool exec`` command file, whose
    reader groups a word in single or double quotes (no escapes): quoted
    with the kind the value does not hold; "" when it holds both kinds or a
    line break, which such a file cannot carry."""
    text = str(value)
    if "\n" in text or "\r" in text or "\x00" in text:
        return ""
    if "'" not in text:
        return f"'{text}'"
    if '"' not in text:
        return f'"{text}"'
    return ""


def urlpath(value: Any) -> str:
    """A value as one URL path segment."""
    return quote(str(value), safe="")


def heredoc_end(text: str, label: str = "LUNA2D") -> str:
    """A here-document delimiter that cannot occur as a line of ``text``:
    the label plus a digest of the text itself."""
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
    return f"{label}_END_{digest}"


def _environment(folder: Path) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(folder)),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,
    )
    env.filters.update(ipxe=ipxe_arg, shquote=shquote, urlpath=urlpath, ipmitool_word=ipmitool_word)
    env.globals["heredoc_end"] = heredoc_end
    return env


class Renderer:
    """Holds the environment; ``render`` is what resources call."""

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder or template_dir()
        self.env = _environment(self.folder)

    def render(self, name: str, **context: Any) -> str:
        """Render the template ``name`` (e.g. ``node.ipxe.j2``) with ``context``."""
        return self.env.get_template(name).render(**context)

    def reload(self) -> list[str]:
        """Read and compile every template again; the new set replaces the
        old only when all compile. Returns the template names. A broken
        template raises ``jinja2.TemplateError`` and changes nothing."""
        env = _environment(self.folder)
        names = sorted(env.list_templates(filter_func=lambda n: n.endswith(".j2")))
        for name in names:
            env.get_template(name)
        self.env = env
        return names


_default: Renderer | None = None


def default() -> Renderer:
    """The daemon's one renderer."""
    global _default
    if _default is None:
        _default = Renderer()
    return _default
