"""The package's version: one number, read by the package root, the command line's --version
and the build (setup.cfg)."""

__version__ = "0.4.0"
