"""The lab: sweeps across many bench hosts on Dask distributed, each host's boards held by its worker.

    bench lab scheduler                         # one per lab (or plain `dask scheduler`)
    bench lab worker --scheduler ADDR -c bench.toml   # on every host with boards
    bench sweep --cluster ADDR                  # anywhere: the client is the one store writer

Modules: `security` (TLS and the loopback rule), `certs` (making a lab CA), `inventory` (boards as Dask
resources), `worker` (the worker side that opens boards), `reserve` (a board held by one sweep at a
time), `executor` (the `Executor` that runs lanes on the cluster), `sweep` (gluing it to run_sweep).
Dask is imported only here, so a bench without the `lab` extra runs everything else.
"""
