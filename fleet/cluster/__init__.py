"""Scale-out on Dask distributed: one run's hosts sharded over Dask workers.

`--workers N` starts a local cluster of N worker processes for the run; `--scheduler
tcp://HOST:PORT` (or tls://) uses an existing one (`dask scheduler`, `dask worker` on
machines near the hosts; `dask worker --resources "site_b=1"` + the inventory var
`fleet_dask_resources` pin a site's hosts to the workers that reach it). One process, the
coordinator, resolves the inventory (request.py), starts or reaches the cluster
(connect.py), plans the shards (shards.py), and alone writes the run store and the journal
(coordinator.py); each worker runs the command's own asyncio fan-out for its shard and
streams every host and change back (worker.py, messages.py); passwords travel as
references or sealed over TLS only (credentials.py).

Nothing in this package imports Dask at module level except worker.py; a one-process run
(the default) never imports it at all.
"""
