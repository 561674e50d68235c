"""The pre-fork supervisor. Stdlib only: never imports the web core, metrics or app code.

Modules, one concept each:

``config``      the frozen :class:`~.config.Config` from CLI, ``FORKLOOP_*`` and ``--config``
``sockets``     bind every listener once (TCP, IPv6, unix, fd://, systemd, reuse-port)
``signals``     the signal queue: handlers only enqueue
``heartbeat``   the versioned worker -> master pipe protocol
``process``     forking a worker, its context, exit status, RSS
``scoreboard``  shared memory: each worker's live connection count, for balanced accepts
``policy``      the pure ``plan(state, now) -> [actions]`` and its reducers
``snapshot``    a read-only view of the state for metrics and status
``reloader``    ``--reload``'s file watcher
``logs``        text/JSON logging, ``--log-file`` and its reopening
``arbiter``     the master's loop that applies the plan
"""
