"""`ponder corpus build DIR [--out PATH]` and `ponder corpus search QUERY`."""

from __future__ import annotations

from pathlib import Path

import typer

DEFAULT_OUT = Path.home() / ".cache" / "ponder" / "corpus"


def register(app: typer.Typer) -> None:
    corpus_app = typer.Typer(help="Build and search an offline document corpus (BM25).", no_args_is_help=True)

    @corpus_app.command("build")
    def build(
        directory: Path = typer.Argument(..., help="Folder of .md, .txt and .jsonl documents."),
        out: Path = typer.Option(DEFAULT_OUT, "--out", "-o", help="Where to save the index."),
    ) -> None:
        """Index a folder of documents and save the index."""
        import time

        from ..tools.corpus import Corpus

        t0 = time.perf_counter()
        try:
            corpus = Corpus.build(directory, out)
        except (FileNotFoundError, ValueError) as e:
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(2) from None
        typer.echo(f"indexed {len(corpus)} documents from {directory} into {out} in {time.perf_counter() - t0:.2f}s")

    @corpus_app.command("search")
    def search(
        query: str = typer.Argument(..., help="Keywords to search for."),
        index: Path | None = typer.Option(None, "--index", "-i", help="A saved index (default: the built-in sample corpus, or ~/.cache/ponder/corpus if built)."),
        k: int = typer.Option(5, "-k", help="Number of results."),
        sample: bool = typer.Option(False, "--sample", help="Search the built-in sample corpus."),
    ) -> None:
        """Search a saved corpus (or the built-in sample corpus)."""
        from ..tools.corpus import Corpus, sample_corpus

        try:
            if sample or (index is None and not (DEFAULT_OUT / "corpus.json").exists()):
                corpus, label = sample_corpus(), "sample corpus"
            else:
                path = index or DEFAULT_OUT
                corpus, label = Corpus.load(path), str(path)
        except (FileNotFoundError, ValueError) as e:
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(2) from None
        hits = corpus.search(query, k=k)
        if not hits:
            typer.echo(f"no matches for {query!r} in {label}")
            return
        for n, h in enumerate(hits, 1):
            typer.echo(f"{n}. [{h.id}] {h.title}  (score {h.score:.2f})\n   {h.snippet}")

    app.add_typer(corpus_app, name="corpus")
