"""The shape of the code, checked from its source: the shared package depends on
no role, and only the ledger writes a task's status."""

import ast

from helpers import ROOT

ROLES = {"master", "node", "web", "spiders"}
# The one module that assembles processes from every role.
ASSEMBLER = "crawlfleet/cli/server.py"
LEDGER = "crawlfleet/ledger.py"
PRODUCT = ("crawlfleet", "master", "node", "web", "spiders")
WRITES = {"insert_one", "insert_many", "update_one", "update_many", "replace_one",
          "find_one_and_update", "find_one_and_replace", "bulk_write"}


def modules(*folders):
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*.py")):
            yield path.relative_to(ROOT).as_posix(), ast.parse(path.read_text(), str(path))


def imported_roots(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module.split(".")[0]


def test_the_shared_package_imports_no_role():
    """Roles import crawlfleet/, never the reverse (lazily inside a function
    counts too), except the module that assembles processes."""
    arrows = [f"{name}:{line} imports {root}"
              for name, tree in modules("crawlfleet") if name != ASSEMBLER
              for line, root in imported_roots(tree) if root in ROLES]
    assert arrows == []


def test_the_assembler_is_the_only_exception():
    """The exception above is real: the assembler does import the roles."""
    tree = dict(modules("crawlfleet"))[ASSEMBLER]
    assert {"master", "node", "web"} <= {root for _, root in imported_roots(tree)}


def names_tasks(node):
    """True when an expression is the tasks collection (`store.tasks`, `db["tasks"]`)."""
    if isinstance(node, ast.Attribute):
        return node.attr == "tasks"
    if isinstance(node, ast.Subscript):
        return isinstance(node.slice, ast.Constant) and node.slice.value == "tasks"
    return False


def writes_status(call):
    """A write that creates tasks, or sets `status` (or cannot be read statically)."""
    if call.func.attr in ("insert_one", "insert_many", "bulk_write", "replace_one",
                          "find_one_and_replace"):
        return True
    update = call.args[1] if len(call.args) > 1 else next(
        (k.value for k in call.keywords if k.arg == "update"), None)
    if not isinstance(update, ast.Dict):
        return True  # an update built elsewhere: it could set anything
    for node in ast.walk(update):
        if isinstance(node, ast.Dict) and any(
                isinstance(k, ast.Constant) and k.value == "status" for k in node.keys):
            return True
    return False


def test_only_the_ledger_writes_task_status():
    """Every change of a task's status is a named transition of crawlfleet/ledger.py."""
    found = []
    for name, tree in modules(*PRODUCT):
        if name == LEDGER:
            continue
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in WRITES and names_tasks(node.func.value)
                    and writes_status(node)):
                found.append(f"{name}:{node.lineno} {ast.unparse(node.func)}")
    assert found == []


def test_the_check_finds_a_status_write():
    """The scan above is not blind: it flags the writes it is there to forbid."""
    samples = ['store.tasks.update_one({"_id": i}, {"$set": {"status": "error"}})',
               'self.store.tasks.insert_one(doc)',
               'db["tasks"].update_many(q, update)']
    for sample in samples:
        call = ast.parse(sample).body[0].value
        assert names_tasks(call.func.value) and writes_status(call), sample
    harmless = ast.parse('store.tasks.update_one({"_id": i}, {"$inc": {"stats.items": 3}})')
    call = harmless.body[0].value
    assert not writes_status(call)
