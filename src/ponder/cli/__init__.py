"""Command-line front end (typer + rich). Reads the event stream; never reaches into engines."""
