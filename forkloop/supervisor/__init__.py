"""The pre-fork supervisor. Stdlib only: never imports the web core, metrics or app code."""
