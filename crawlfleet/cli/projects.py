"""Client verbs for spider projects: deploy (a folder, a zip, or git), list
projects and versions, roll back, pull, delete a version or a project."""

import os
import tempfile
import zipfile
from pathlib import Path

import click

from crawlfleet import packaging
from crawlfleet.cli.client import api_client, api_command, print_json, print_table, when


def zip_project(folder, dest):
    """Zip a project folder the way crawlfleet packs versions (no .git, caches,
    virtualenvs or build output), inside a top folder named after it."""
    folder = Path(folder).resolve()
    files = packaging.project_files(folder)
    if not files:
        raise click.ClickException(f"{folder} holds no project files")
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zf:
        for rel in files:
            zf.write(folder / rel, f"{folder.name}/{rel}")
    return dest


def size_text(size):
    if not isinstance(size, (int, float)):
        return "-"
    for unit in ("B", "KB", "MB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


def deployed_line(result):
    state = "new version" if result.get("new") else "already known, now current"
    line = (f"{result['project']}: version {result['version']} ({result['label']}) — {state}; "
            f"spiders: {', '.join(result['spiders']) or '-'}")
    if result.get("commit"):
        line += f"; commit {result['commit'][:12]}"
    return line


def say_inspecting(result):
    click.echo(f"{result['project']}: uploaded; inspecting… (listing its spiders in its own "
               "environment)", err=True)


def register(main):
    def project_command(name=None):
        """A `crawlfleet NAME PROJECT ...` command: the project argument first, the
        command's own parameters (decorators below this one) after, and the API's
        errors as one line."""
        def decorate(func):
            func = click.argument("project")(api_command(func))
            return main.command(name)(func)

        return decorate

    @main.command()
    @click.argument("path", required=False, type=click.Path(exists=True, path_type=Path))
    @click.option("--project", help="Project name (default: the folder's or zip's top "
                                    "folder's name, else scrapy.cfg's [deploy] project).")
    @click.option("--label", help="A name for this version (default: the upload time).")
    @click.option("--git", "git_url", metavar="URL",
                  help="Import from a git repository instead (https://, ssh://, git@host:path).")
    @click.option("--ref", help="With --git: the branch or tag (default: the remote's HEAD).")
    @click.option("--credentials-env", metavar="VAR",
                  help="With an https --git URL: the environment variable holding a token "
                       "(or user:token) for a private repository; kept sealed for pull.")
    @click.option("--json", "as_json", is_flag=True, help="Print the server's JSON answer.")
    @api_command
    def deploy(path, project, label, git_url, ref, credentials_env, as_json):
        """Deploy a spider project: PATH is a project folder (zipped here, without
        .git, caches or virtualenvs) or a zip; or --git URL."""
        client = api_client()
        if git_url:
            if path:
                raise click.UsageError("give either PATH or --git, not both")
            credentials = None
            if credentials_env:
                credentials = os.environ.get(credentials_env)
                if not credentials:
                    raise click.UsageError(f"the variable {credentials_env} is empty or unset")
            result = client.deploy_git(git_url, ref=ref, project=project, label=label,
                                       credentials=credentials)
        elif ref:
            raise click.UsageError("--ref goes with --git")
        elif path is None:
            raise click.UsageError("give a project folder, a zip, or --git URL")
        elif path.is_dir():
            with tempfile.TemporaryDirectory(prefix="crawlfleet-deploy-") as tmp:
                archive = zip_project(path, os.path.join(tmp, f"{path.resolve().name}.zip"))
                result = client.deploy_zip(archive, project=project, label=label,
                                           on_inspecting=say_inspecting)
        else:
            if not zipfile.is_zipfile(path):
                raise click.ClickException(f"{path} is neither a folder nor a zip file")
            result = client.deploy_zip(str(path), project=project, label=label,
                                       on_inspecting=say_inspecting)
        if as_json:
            return print_json(result)
        click.echo(deployed_line(result))

    @main.command()
    @click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
    @api_command
    def projects(as_json):
        """List the spider projects and their current versions."""
        items = api_client().projects()
        if as_json:
            return print_json(items)
        print_table(["NAME", "CURRENT", "LABEL", "VERSIONS", "SOURCE", "SPIDERS"],
                    [[p["name"], p.get("current_version"), p.get("current_label"),
                      p.get("version_count"), (p.get("source") or "").split(":")[0],
                      ", ".join(p.get("spiders") or [])] for p in items])

    @project_command()
    @click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
    def versions(project, as_json):
        """List a project's versions, newest first (* marks the current one)."""
        body = api_client().versions(project)
        if as_json:
            return print_json(body)
        print_table(["", "VERSION", "LABEL", "CREATED", "SOURCE", "SIZE", "SPIDERS"],
                    [["*" if v.get("current") else "", v["id"], v.get("label"),
                      when(v.get("created_at")), (v.get("source") or "").split(":")[0],
                      size_text(v.get("size")), ", ".join(v.get("spiders") or [])]
                     for v in body["versions"]])

    @project_command()
    @click.argument("version")
    def rollback(project, version):
        """Make VERSION (an id or a label) the current version of PROJECT."""
        body = api_client().activate(project, version)
        click.echo(f"{project}: version {body['current_version']} "
                   f"({body.get('current_label')}) is current; "
                   f"spiders: {', '.join(body.get('spiders') or []) or '-'}")

    @project_command()
    def pull(project):
        """Clone PROJECT's git repository again; a new version if it changed."""
        result = api_client().pull(project)
        if not result.get("changed"):
            click.echo(f"{project}: unchanged (version {result['version']}, "
                       f"commit {result['commit'][:12]})")
        else:
            click.echo(deployed_line(result))

    @project_command("new")
    @click.option("--template", type=click.Choice(["scrapy", "script"]), default="scrapy",
                  show_default=True, help="A Scrapy project, or a plain Python script.")
    @click.option("--spider", help="Its spider's name (default: from the project name).")
    def new_project(project, template, spider):
        """Create PROJECT from a template, ready to run against the demo site."""
        click.echo(deployed_line(api_client().create_project(template, project, spider=spider)))

    @project_command()
    @click.argument("base")
    @click.argument("other")
    @click.option("--files", "files_only", is_flag=True, help="Only the list of files.")
    def compare(project, base, other, files_only):
        """What changed from version BASE to version OTHER (ids or labels): files, then a diff."""
        body = api_client().compare(project, base, other)
        for f in body["files"]:
            click.echo(f"{f['status'][0].upper()} {f['path']}")
        if not body["files"]:
            click.echo("(the same files)")
        if not files_only and body["diff"]:
            click.echo(body["diff"], nl=False)

    @project_command()
    @click.argument("version")
    def rmversion(project, version):
        """Delete a version that is not current and that no waiting or running task uses."""
        body = api_client().delete_version(project, version)
        click.echo(f"{project}: version {body['deleted']} ({body.get('label')}) deleted")

    @project_command()
    @click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
    def rmproject(project, yes):
        """Delete a project with all its versions and spiders (tasks and results stay)."""
        if not yes:
            click.confirm(f"delete project {project!r}, its versions and its spiders?",
                          abort=True)
        body = api_client().delete_project(project)
        click.echo(f"{project}: deleted with {len(body['versions'])} version(s) and spiders "
                   f"{', '.join(body['spiders']) or '-'}")

