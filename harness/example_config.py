"""The commented bench.toml that `bench init` writes; tests check it parses to the defaults it shows."""

EXAMPLE_CONFIG = '''\
# bench.toml — what `bench sweep` measures, where, and where results go.
# Every key is checked: a misspelt key or a wrong type is an error naming it.

[store]
# SQLAlchemy URL. SQLite (WAL) in the working directory by default; PostgreSQL works too:
#   url = "postgresql+psycopg://bench@db.lab.example/bench"   (password from PGPASSWORD or ~/.pgpass, never here)
url = "sqlite:///bench.db"

# One [[devices]] table per device. `name` is yours; `kind` picks the driver; other keys belong to the kind.
# Without any [[devices]], bench uses every kind that works here without hardware.

[[devices]]
name = "local"
kind = "local"        # the host CPU with LiteRT
threads = 1
kernels = "default"   # default (XNNPACK) | builtin (no delegates) | reference

[sweep]
# .tflite files or variant manifests (.json written by `bench prune`), relative to this file.
# "example:digits" is the bundled example family.
models = ["example:digits"]
methods = []          # keep only these pruning methods (dense/original baselines are always kept); [] = all
sparsities = []       # keep only these target sparsities, each in [0, 1); [] = all
repeats = 3           # cells per (variant, device); repeats are interleaved across variants
warmup = 10           # untimed inferences before each timed loop
iterations = 100      # timed inferences per cell (at least)
min_seconds = 0.0     # ...and until they add up to this many seconds of inference
accuracy_samples = "all"   # labelled samples classified per cell for top-1: "all", a count, or 0
'''
