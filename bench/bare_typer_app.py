"""The peer for `tbimg --help`: a bare Typer app, two commands, Typer's rich help.

python bench/bare_typer_app.py --help
"""

import typer

app = typer.Typer(rich_markup_mode="rich")


@app.command()
def single(index: int = typer.Option(0, help="Which image.")) -> None:
    """Write one image."""


@app.command()
def grid(count: int = typer.Option(25, help="How many images.")) -> None:
    """Write many images."""


if __name__ == "__main__":
    app()
