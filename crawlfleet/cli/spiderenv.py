"""`crawlfleet env`: a project's (or one spider's) environment variables and
secrets, through the API (web/spiderenv_api.py).

    crawlfleet env set PROJECT [--spider NAME] NAME [VALUE] [--secret]
    crawlfleet env ls PROJECT [--spider NAME]
    crawlfleet env rm PROJECT [--spider NAME] NAME

A secret's VALUE may be left out: it is then read from the terminal without
echo (or from stdin), so it stays out of the shell's history.
"""

from urllib.parse import quote

import click

from crawlfleet.cli.client import api_client, api_command, print_json, print_table, when


def register(main):
    @main.group()
    def env():
        """Environment variables and secrets of a project's spiders."""

    @env.command("set")
    @click.argument("project")
    @click.argument("name")
    @click.argument("value", required=False)
    @click.option("--spider", help="Only for this spider of the project.")
    @click.option("--secret", is_flag=True, help="Encrypt it at rest and never show it again.")
    @api_command
    def set_(project, name, value, spider, secret):
        """Set NAME to VALUE for PROJECT's spiders (or one --spider)."""
        if value is None:
            value = click.prompt(f"value of {name}", hide_input=secret, err=True)
        body = {"value": value, "secret": secret, "spider": spider}
        result = api_client().request(
            "PUT", f"/projects/{quote(project, safe='')}/env/{quote(name, safe='')}",
            json=body).json()
        where = f"spider {spider}" if spider else f"project {project}"
        click.echo(f"{where}: {name} = {result['value']}" + (" (secret)" if secret else ""))

    @env.command("ls")
    @click.argument("project")
    @click.option("--spider", help="What this spider gets (the project's and its own).")
    @click.option("--json", "as_json", is_flag=True, help="Print the server's JSON answer.")
    @api_command
    def ls(project, spider, as_json):
        """List PROJECT's variables; secrets show masked."""
        params = {"spider": spider} if spider else {}
        result = api_client().get(f"/projects/{quote(project, safe='')}/env", **params)
        if as_json:
            return print_json(result)
        print_table(["NAME", "SPIDER", "VALUE", "SECRET", "UPDATED"],
                    [[v["name"], v["spider"] or "(all)", v["value"], "yes" if v["secret"] else "",
                      when(v.get("updated_at"))] for v in result["variables"]])

    @env.command("rm")
    @click.argument("project")
    @click.argument("name")
    @click.option("--spider", help="The spider's own variable, not the project's.")
    @api_command
    def rm(project, name, spider):
        """Remove a variable."""
        api_client().request("DELETE", f"/projects/{quote(project, safe='')}/env/"
                                       f"{quote(name, safe='')}",
                             params={"spider": spider} if spider else None)
        click.echo(f"removed {name}")
