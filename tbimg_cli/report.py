"""Terminal output of `inspect` and `export`: rich tables, problems as one line each."""

from __future__ import annotations

from rich.markup import escape
from rich.table import Table

from tbimg_cli import output


def _steps(steps: list[int]) -> str:
    first, last = min(steps), max(steps)
    span = f"{first}" if first == last else f"{first}..{last}"
    return f"{span} ({len(steps)})"


def print_inspection(inspection) -> None:
    if not inspection.tags:
        output.note(f"No summaries found in {inspection.logdir}.")
    else:
        table = Table(title=f"{inspection.logdir}", title_justify="left")
        for name, justify in (("run", "left"), ("tag", "left"), ("plugin", "left"), ("steps (n)", "right"),
                              ("samples", "right"), ("size / last", "right")):  # fmt: skip
            table.add_column(name, justify=justify, overflow="fold")
        for tag in inspection.tags:
            if tag.plugin == "images":
                detail, samples = tag.image_size, str(tag.samples)
            elif tag.last_value is not None:
                detail, samples = f"{tag.last_value:.4g}", ""
            else:
                detail, samples = "", ""
            table.add_row(escape(tag.run), escape(tag.tag), tag.plugin, _steps(tag.steps), samples, detail)
        output.stdout.print(table)
    print_problems(inspection.problems)


def print_problems(problems) -> None:
    for problem in problems:
        where = f"{problem.path} at byte {problem.offset}"
        if problem.truncated_tail:
            output.note(f"Note: {where}: {problem.message} (a writer may still be running); read up to there.")
        else:
            output.error(f"{where}: {problem.message}; the rest of that file was skipped")


def print_export(result) -> None:
    output.stdout.print(
        f"[green]✓[/] Exported {len(result.files)} image(s) from {len(result.runs)} run(s) "
        f"and {len(result.tags)} tag(s) to [bold]{escape(str(result.out))}[/]",
        soft_wrap=True,
    )
    print_problems(result.problems)
