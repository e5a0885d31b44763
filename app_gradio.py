"""Serve the ser-classic demo from the source tree: ``python app_gradio.py [OPTIONS]`` is ``ser app [OPTIONS]``."""

import sys

from ser_classic.cli import app

if __name__ == "__main__":
    app(["app", *sys.argv[1:]], prog_name="app_gradio.py")
