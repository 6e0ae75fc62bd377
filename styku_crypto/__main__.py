"""``python -m styku_crypto``: the command line."""

from styku_crypto._cli import run

if __name__ == "__main__":
    run()
