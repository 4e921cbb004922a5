"""`python -m tbimg_cli` runs the same entry point as the `tbimg` script."""

from tbimg_cli.cli import main

if __name__ == "__main__":
    main()
