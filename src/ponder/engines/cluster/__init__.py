"""Running ponder's work on a Ray cluster: hosts (async actors holding many jobs) and the
driver's pool of them. Used by the swarm's Ray executor (`engines/swarm/ray_executor.py`)
and by `ponder compare --ray` (`bench/ray_runner.py`). Importing this package imports no
Ray; `pool` and the hosts import it when a pool opens."""
