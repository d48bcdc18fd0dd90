"""MLPerf Tiny (EEMBC) benchmark protocol: the `mlperf` device kind and the official runner harness."""
