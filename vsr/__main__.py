"""`python -m vsr` and the `vsr` command.

The entry point catches Ctrl-C around the whole start-up: importing the CLI (numpy, PyAV,
onnxruntime) takes a quarter of a second before `vsr.pipeline.interrupts` installs its handlers, and a
Ctrl-C in that window printed a KeyboardInterrupt traceback and exited -2. Nothing has been
written by then, so one line and status 130 (128 + SIGINT, as in the rest of the CLI) say it
all. Deliberately nothing is imported at module level.
"""


def run() -> None:
    """Console-script entry point (pyproject's `vsr`)."""
    import sys

    try:
        from .app.cli import main_exit

        main_exit()
    except KeyboardInterrupt:
        sys.stderr.write("vsr: interrupted\n")
        sys.exit(130)


if __name__ == "__main__":
    run()
