"""Worker processes: the forkloop worker main and gunicorn worker classes."""
