"""Default names and figures the CLI shows in its help, kept free of heavy imports so that
`bench --help` and `bench --version` load nothing they do not print."""

DEFAULT_CONFIG_NAME = "bench.toml"
DEFAULT_STORE_URL = "sqlite:///bench.db"
#: Significance level of compare's latency test.
DEFAULT_ALPHA = 0.01
#: Coefficient of variation above which a latency figure gets a report warning.
DEFAULT_CV_THRESHOLD = 0.10
#: LiteRT kernel sets `bench models eval` can use.
KERNELS: tuple[str, ...] = ("reference", "builtin")
