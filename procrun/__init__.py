"""procrun: run a Procfile in a container, the way PID 1 should.

Data flows one way: project -> supervisor <-> process -> output, with signals, the reaper and
control at the edges and cli on top. A layer imports only the layers below it
(tests/test_layout.py checks it, and that there is no import cycle).

Module map, one line a module:

  The core's vocabulary (imported by every layer)
  errors.py               ProcrunError and its kinds, every EXIT_* code, the one error funnel
  quoting.py              how user input is quoted inside an error message
  settings.py             ProcessSettings and ProcessSpec: what the parsers produce, the core reads
  clock.py                time as an injected dependency (the loop's clock, a fake one in tests)
  lifecycle.py            states, transitions, pure restart and stop-plan decisions
  outcomes.py             how an exit reads, and procrun's own exit code
  events.py               the typed messages on the supervisor's one queue

  The core
  supervisor.py           owns the processes and the queue; decides restarts, shutdown, exit code
  process.py              ManagedProcess: one child, its state, its process group
  stopping.py             running a stop plan: each step at its time, re-planned on a deadline
  exits.py                after a child exited: stopped, finished, restarted or given up
  ordering.py             depends_on at run time: who may start now, who stops after whom
  shutdown.py             a shutdown under way: its deadline over every stop, the stop order,
                          and forcing it
  signals.py              receiving and delivering signals, the child's side of spawning
  reaper.py               collecting every exit: owned children by pid, adopted orphans
  undertaker.py           kills what a SIGKILLed procrun would leave behind
  crashloop.py            repeated identical crashes said once, not a traceback per restart
  watchdog.py             restarts a process whose tree stays above max_memory
  scaling.py              `procrun scale`: instances added and started, or stopped and let go
  procinfo.py             process-tree RSS and CPU (the one module that imports psutil)

  project/: disk -> formation
  project/procfile.py     Procfile text -> entries, overlays merged, with file:line errors
  project/environ.py      .env files -> variables, and their precedence under the real environment
  project/tomlfile.py     reading TOML so that every later error can name a line
  project/textfile.py     reading a UTF-8 file, with the one set of read and decode errors
  project/values.py       durations, sizes and signal names as people write them
  project/configfile.py   one settings file -> its validated layer, errors at file:line
  project/config.py       the settings files merged -> Config -> each type's settings
  project/processkeys.py  the keys of a process table and the converters of their values
  project/healthkeys.py   ready, alive and depends_on in a process table -> Probe, LivenessProbe
  project/celery_worker.py  recognising a Celery worker from its command
  project/stackdefaults.py  readiness defaults for gunicorn, Celery, uvicorn and redis-server
  project/shell.py        how a command runs: /bin/sh, with exec where the program can lead
  project/dependencies.py  depends_on checked against the Procfile, and the start order
  project/formation.py    entries + settings + counts -> the ProcessSpecs to run
  project/programs.py     whether each command's program is there, before anything starts
  project/platforms.py    where procrun runs, that platform's SIGKILL deadline, the warnings
  project/limits.py       the fds and pids a formation needs, judged against a limit
  project/machinelimits.py  the machine's limits read for check, raised or refused at start
  project/loader.py       ProjectOptions -> Project: everything above, in order

  output/: what the user sees
  output/relay.py         the one owner of stdout: child lines and procrun's events, prefixed
  output/lines.py         cutting a child's byte stream into whole lines, bounded
  output/sink.py          procrun's stdout: an async pipe or blocking writes
  output/history.py       recent lines per process, and live followers, for `procrun logs`
  output/eventlog.py      procrun's own structlog events, rendered into the relay
  output/pipesize.py      growing a pipe's capacity within the user's quota
  output/heap.py          keeping glibc's heap through a log burst

  health/: who is ready, and still alive
  health/monitor.py       the supervisor's Observer: each run's readiness and liveness probes
  health/probes.py        one check of a process: tcp, http or exec
  health/polling.py       polling a probe until it passes: back-off, and output as a nudge
  health/liveness.py      liveness: a probe every so often, or sd_notify watchdog pings
  health/notifysocket.py  a private sd_notify socket per process, its peer checked
  health/sdnotify.py      procrun's own READY=1, STATUS=, STOPPING=1 and WATCHDOG=1 to its manager

  watch/: restart on file change (`procrun start --watch`)
  watch/rules.py          which changed files restart which processes; what is always ignored
  watch/watcher.py        watchfiles over the project, debounced, restarts through stop sequences

  export/: the formation as units of another scheduler (`procrun export FORMAT`)
  export/units.py         what each type's unit needs: count, deadline, stop sequence, PORT, probes
  export/probes.py        which probes the platform makes itself (tcp, http on PORT), else status
  export/yamltext.py      the generated files as text: YAML, comments, the "generated" header
  export/kubernetes.py    a Deployment per type: grace period, probes, Secret by name, non-root
  export/compose.py       a Compose service per type: stop_grace_period, healthcheck, depends_on
  export/systemd.py       a target and a template unit per type: Type=notify, KillMode=mixed
  export/render.py        a Render Blueprint: a service per type on top of the project's own
  export/formats.py       the formats by name, what each requires, where the files go

  importing/: another supervisor's configuration as a Procfile (`procrun import supervisord`)
  importing/supervisordconf.py  a supervisord.conf read as supervisord reads it, [include]s too
  importing/expansions.py  %(name)s expansions: known names as text, the environment as ${X}
  importing/shellwords.py  supervisord's argv (no shell) as a /bin/sh command, sh -c unwrapped
  importing/environment.py  environment= pairs, and which go to env, .env or the command
  importing/programkeys.py  [program:x] values as supervisord reads them; why keys are dropped
  importing/lifecyclekeys.py  autorestart, startsecs, stopsignal... -> restart and stop settings
  importing/program.py    one [program:x] -> its Procfile entries: numprocs, command, directory
  importing/sections.py   the other sections ([supervisord], [inet_http_server]...) and why
  importing/startorder.py  [group:x] and priority -> the programs in supervisord's start order
  importing/translate.py  the whole file: working directories, where env and secrets go
  importing/outcome.py    settings with the key they come from; dropped/note/warning lines
  importing/writer.py     Procfile, procrun.toml with comments, .env (0600); no overwrite

  control/: the control socket
  control/protocol.py     the wire protocol: verbs, limits, encode/decode, typed results
  control/paths.py        where sockets live, one per project, in a private directory
  control/listener.py     binding the socket file: stale ones replaced, live ones never taken
  control/requests.py     checking a request off the wire before anything acts on it
  control/server.py       the server `procrun start` runs: peer check, one task a connection
  control/connection.py   one connection's I/O: the peer, replies, streams, hanging up
  control/target.py       what a request may do (ControlTarget), and the supervisor's side of it
  control/client.py       finding a supervisor and asking it, for the short-lived commands

  cli/: the command line
  cli/entry.py            the `procrun` entry point; a plain `status` answered without click
  cli/main.py             the click group, `start` and `check`, the error funnel's end
  cli/oneoff.py           `procrun run`: a command in the formation's environment, exec'd
  cli/export.py           `procrun export FORMAT`: the project read as `start` reads it, written out
  cli/importing.py        `procrun import supervisord FILE`: the files written, what was left out
  cli/remote.py           the click commands that talk to a running supervisor
  cli/client.py           asking a supervisor and printing its status, free of click
  cli/statusview.py       `procrun status` as a table, and the health exit code
  cli/runner.py           `procrun start`: signal handlers, project, stdout, supervisor, socket

  __main__.py             `python -m procrun`
"""

__version__ = "0.1.0"
