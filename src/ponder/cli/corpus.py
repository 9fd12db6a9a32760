"""`ponder corpus build DIR [--out PATH]` and `ponder corpus search QUERY [--index DIR|INDEX]`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from ..tools.corpus import Skipped

DEFAULT_OUT = Path.home() / ".cache" / "ponder" / "corpus"


def register(app: typer.Typer) -> None:
    corpus_app = typer.Typer(help="Build and search an offline document corpus (BM25).", no_args_is_help=True)

    @corpus_app.command("build")
    def build(
        directory: Path = typer.Argument(..., help="Folder of .md, .txt, .html, .pdf, .jsonl and extension-less text files."),
        out: Path = typer.Option(DEFAULT_OUT, "--out", "-o", help="Where to save the index."),
        progress: bool = typer.Option(True, help="Show a progress bar while reading files."),
        json_out: bool = typer.Option(False, "--json", help="Print the result as one JSON object (messages go to stderr)."),
    ) -> None:
        """Index a folder of documents and save the index; lists every file it skipped and why."""
        import time

        from rich.console import Console
        from rich.markup import escape
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        from ..tools.corpus import Corpus, CorpusError, scan_folder

        console = Console(stderr=True)
        t0 = time.perf_counter()
        scan = None
        try:
            with Progress(TextColumn("[bold]reading"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                          TextColumn("{task.description}"), console=console, transient=True,
                          disable=not progress) as bar:
                job = bar.add_task("", total=None)

                def step(done: int, total: int, path: str) -> None:
                    bar.update(job, completed=done, total=total, description=escape(path[-60:]))

                scan = scan_folder(directory, step)
            if not scan.documents:
                raise CorpusError(f"no readable documents in {str(directory)!r} ({scan.files} file(s) found, "
                                  f"{len(scan.skipped)} skipped)")
            corpus = Corpus.from_documents(scan.documents, name=str(directory))
            corpus.save(out)
        except (FileNotFoundError, ValueError) as e:
            _skipped(scan.skipped if scan is not None else [])
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(2) from None
        _skipped(scan.skipped, err=json_out)
        if json_out:
            import json

            typer.echo(json.dumps({"documents": len(corpus), "files": scan.files, "out": str(out),
                                   "skipped": [{"path": s.path, "reason": s.reason} for s in scan.skipped],
                                   "seconds": round(time.perf_counter() - t0, 3)}))
            return
        typer.echo(f"indexed {len(corpus)} documents from {scan.files - len(scan.skipped)} of {scan.files} files in "
                   f"{directory} into {out} in {time.perf_counter() - t0:.2f}s"
                   + (f" ({len(scan.skipped)} skipped, listed above)" if scan.skipped else ""))

    @corpus_app.command("search")
    def search(
        query: str = typer.Argument(..., help="Keywords to search for."),
        index: Path | None = typer.Option(None, "--index", "-i", help="A saved index or a folder of documents (default: ~/.cache/ponder/corpus if built, else the sample corpus)."),
        k: int = typer.Option(5, "-k", help="Number of results."),
        sample: bool = typer.Option(False, "--sample", help="Search the built-in sample corpus."),
        json_out: bool = typer.Option(False, "--json", help="One JSON line per result."),
    ) -> None:
        """Search a saved corpus, a folder, or the built-in sample corpus."""
        from ..tools.corpus import load_corpus

        try:
            if sample or (index is None and not (DEFAULT_OUT / "corpus.json").exists()):
                corpus = load_corpus(None)
            else:
                corpus = load_corpus(index or DEFAULT_OUT)
        except (FileNotFoundError, ValueError) as e:
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(2) from None
        hits = corpus.search(query, k=k)
        if json_out:
            import json

            for h in hits:
                typer.echo(json.dumps({"corpus": corpus.name, "id": h.id, "title": h.title, "score": round(h.score, 4),
                                       "snippet": h.snippet}))
            return
        if not hits:
            typer.echo(f"no matches for {query!r} in {corpus.name}")
            return
        typer.echo(f"{len(hits)} match(es) in {corpus.name}:")
        for n, h in enumerate(hits, 1):
            typer.echo(f"{n}. [{h.id}] {h.title}  (score {h.score:.2f})\n   {h.snippet}")

    app.add_typer(corpus_app, name="corpus")


def _skipped(skipped: list[Skipped], err: bool = False) -> None:
    """Every skipped file with its reason (past 50, counted by reason)."""
    if not skipped:
        return
    from collections import Counter

    typer.echo(f"skipped {len(skipped)} file(s):", err=err)
    for s in skipped[:50]:
        typer.echo(f"  {s.path}: {s.reason}", err=err)
    if len(skipped) > 50:
        rest = Counter(s.reason for s in skipped[50:])
        typer.echo("  … and " + "; ".join(f"{n} more: {why}" for why, n in rest.most_common()), err=err)
