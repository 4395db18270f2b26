"""The new-project wizard: a project made from a small template
(`master/project_templates/`), ready to run against the bundled demo site.

``scrapy`` is a Scrapy project with one spider; ``script`` a plain-Python
spider named in a crawlfleet.json. In file names and contents,
``__project__``, ``__module__`` (the project name as a Python package name)
and ``__spider__`` are replaced; the result is deployed like an upload.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crawlfleet.errors import BadRequest, Conflict
from crawlfleet.models import SPIDER_NAME_RE, Doc
from master import uploads

if TYPE_CHECKING:
    from crawlfleet.config import Config
    from crawlfleet.store import Store

TEMPLATES_DIR = Path(__file__).parent / "project_templates"
TEMPLATES = {
    "scrapy": "Scrapy project: one spider listing the demo bookshop",
    "script": "Plain Python script (no Scrapy): one spider listing the demo bookshop",
}


def module_name(project: str) -> str:
    """The project's name as a Python package name (scrapy.cfg's settings module)."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", project)
    return name if name[0].isalpha() or name[0] == "_" else "p_" + name


def render(template: str, dest: Path, words: dict[str, str]) -> None:
    """Copy the template into `dest`, replacing the words in names and texts."""
    src_root = TEMPLATES_DIR / template
    for src in sorted(src_root.rglob("*")):
        if src.is_dir() or "__pycache__" in src.parts:
            continue
        rel = src.relative_to(src_root).as_posix()
        text = src.read_text(encoding="utf-8")
        for word, value in words.items():
            rel = rel.replace(word, value)
            text = text.replace(word, value)
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")


def create(store: Store, config: Config, project: Any, template: Any, spider: Any = None,
           *, label: Any = None) -> Doc:
    """Deploy a new project `project` from `template`, its one spider named
    `spider` (default: the project's name); refused if the project exists."""
    project = uploads.check_name(project)
    if template not in TEMPLATES:
        raise BadRequest(f"unknown template {template!r}; choose one of {', '.join(TEMPLATES)}")
    spider = spider or module_name(project)
    if not isinstance(spider, str) or not SPIDER_NAME_RE.match(spider) or (
            template == "scrapy" and not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", spider)):
        raise BadRequest(f"invalid spider name {spider!r}: letters, digits and '_'")
    if store.projects.find_one({"_id": project}, {"_id": 1}):
        raise Conflict(f"project {project!r} exists already; choose another name")
    with uploads.scratch(config, "wizard-") as tmp:
        root = tmp / project
        render(template, root, {"__project__": project, "__module__": module_name(project),
                                "__spider__": spider})
        result = uploads.deploy_folder(store, config, root, project,
                                       label=label or f"{template} template", source="wizard")
        shutil.rmtree(root, ignore_errors=True)
    result["template"] = template
    return result
