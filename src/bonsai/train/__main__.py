"""``python -m bonsai.train ARGS`` is ``bonsai train ARGS``; ``accelerate launch -m bonsai.train``
runs it on several processes (see the package docstring)."""

import sys

from bonsai.cli import main

if __name__ == "__main__":
    main(["train", *sys.argv[1:]])
