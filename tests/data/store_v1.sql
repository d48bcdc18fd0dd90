BEGIN TRANSACTION;
CREATE TABLE bench_meta (
	"key" VARCHAR(64) NOT NULL, 
	value TEXT NOT NULL, 
	PRIMARY KEY ("key")
);
INSERT INTO "bench_meta" VALUES('schema_version','1');
CREATE TABLE device_snapshots (
	id INTEGER NOT NULL, 
	run_id VARCHAR(64) NOT NULL, 
	name VARCHAR(255) NOT NULL, 
	kind VARCHAR(64) NOT NULL, 
	runtime VARCHAR(128), 
	runtime_version VARCHAR(128), 
	cpu VARCHAR(255), 
	clock_hz BIGINT, 
	details JSON NOT NULL, 
	captured_at VARCHAR(32) NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(run_id) REFERENCES runs (id)
);
INSERT INTO "device_snapshots" VALUES(1,'20261202-151955-063a','board-a','fake','fake','0',NULL,NULL,'{"latency_us": 250.0}','2026-12-02T15:19:55.613+00:00');
INSERT INTO "device_snapshots" VALUES(2,'20261202-151955-063a','sim-m4','sim','tflite-micro','0.dev20261023182759-g8f6596d','cortex-m4',80000000,'{"board": "sim-stm32l476", "firmware": "bench-sim/1", "protocol": 1, "arena_capacity": 196608, "max_model_size": 786432, "cycle_source": "COST_MODEL", "latency_source": "estimated", "marker_pin": 5, "port": "socket://127.0.0.1:40165", "baud": 921600, "profile": "cortex-m4@80MHz", "transport": "tcp", "simulated": true, "faults": {}}','2026-12-02T15:19:56.342+00:00');
CREATE TABLE measurements (
	id INTEGER NOT NULL, 
	run_id VARCHAR(64) NOT NULL, 
	cell_key VARCHAR(512) NOT NULL, 
	device_name VARCHAR(255) NOT NULL, 
	device_snapshot_id INTEGER, 
	variant_sha256 VARCHAR(64) NOT NULL, 
	variant_name VARCHAR(255) NOT NULL, 
	repeat INTEGER NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	error TEXT, 
	started_at VARCHAR(32) NOT NULL, 
	finished_at VARCHAR(32) NOT NULL, 
	n INTEGER, 
	warmup INTEGER, 
	latency_ns JSON, 
	p5_us FLOAT, 
	p50_us FLOAT, 
	p95_us FLOAT, 
	mean_us FLOAT, 
	std_us FLOAT, 
	cv FLOAT, 
	load_time_ms FLOAT, 
	ram_bytes BIGINT, 
	arena_bytes BIGINT, 
	model_bytes BIGINT, 
	accuracy FLOAT, 
	accuracy_n INTEGER, 
	output_agreement FLOAT, 
	output_max_lsb INTEGER, 
	energy_uj FLOAT, 
	estimated BOOLEAN NOT NULL, 
	latency_source VARCHAR(16), 
	timing_method VARCHAR(255), 
	details JSON, 
	PRIMARY KEY (id), 
	CONSTRAINT uq_measurement_cell UNIQUE (run_id, cell_key), 
	FOREIGN KEY(run_id) REFERENCES runs (id), 
	FOREIGN KEY(device_snapshot_id) REFERENCES device_snapshots (id), 
	FOREIGN KEY(variant_sha256) REFERENCES model_variants (sha256)
);
INSERT INTO "measurements" VALUES(1,'20261202-151955-063a','board-a|digits_dense|6af46db934b5|r0','board-a',1,'6af46db934b5ca63a0d084168a41c2fef0afd72281024789af7e06adb1b533a8','digits_dense',0,'ok',NULL,'2026-12-02T15:19:55.610+00:00','2026-12-02T15:19:55.613+00:00',10,1,'[250000.00000000003, 250000.00000000134, 249999.99999999916, 249999.99999999988, 249999.99999999703, 249999.99999999953, 249999.99999999866, 249999.99999999916, 249999.99999999956, 250000.00000000242]',2.4999999999999778311e+02,2.49999999999999545242e+02,2.50000000000001932677e+02,2.49999999999999687359e+02,1.45173462318804628629e-12,5.80693849275219205023e-15,0.0,NULL,24896,24896,NULL,NULL,NULL,NULL,NULL,1,'estimated','fake: synthetic latency','{"thermal_before": {"source": "vcgencmd", "temp_c": 60.0, "zones": null, "throttled": "0x0"}, "thermal_after": {"source": "vcgencmd", "temp_c": 61.0, "zones": null, "throttled": "0x0"}}');
INSERT INTO "measurements" VALUES(2,'20261202-151955-063a','board-a|digits_dense|6af46db934b5|r1','board-a',1,'6af46db934b5ca63a0d084168a41c2fef0afd72281024789af7e06adb1b533a8','digits_dense',1,'ok',NULL,'2026-12-02T15:19:55.613+00:00','2026-12-02T15:19:55.615+00:00',10,1,'[250000.00000000003, 250000.00000000134, 249999.99999999916, 249999.99999999988, 249999.99999999703, 249999.99999999953, 249999.99999999866, 249999.99999999916, 249999.99999999956, 250000.00000000242]',2.4999999999999778311e+02,2.49999999999999545242e+02,2.50000000000001932677e+02,2.49999999999999687359e+02,1.45173462318804628629e-12,5.80693849275219205023e-15,0.0,NULL,24896,24896,NULL,NULL,NULL,NULL,NULL,1,'estimated','fake: synthetic latency','{"thermal_before": {"source": "vcgencmd", "temp_c": 71.2, "zones": null, "throttled": "0x0"}, "thermal_after": {"source": "vcgencmd", "temp_c": 82.6, "zones": null, "throttled": "0x50005"}}');
INSERT INTO "measurements" VALUES(3,'20261202-151955-063a','sim-m4|digits_dense|6af46db934b5|r0','sim-m4',2,'6af46db934b5ca63a0d084168a41c2fef0afd72281024789af7e06adb1b533a8','digits_dense',0,'ok',NULL,'2026-12-02T15:19:56.341+00:00','2026-12-02T15:19:56.677+00:00',10,1,'[2739350.0, 2733350.0, 2738700.0, 2745612.5, 2731137.5, 2744450.0, 2737012.5, 2744950.0, 2728700.0, 2733075.0]',2729.796875,2737.85625,2745.314375,2737.63375,6.04853933813781186046e+00,2.20940413893487824087e-03,3.32569129999910728656e+02,NULL,6384,24896,NULL,NULL,NULL,NULL,82.1290125,1,'estimated','device cycle counter (COST_MODEL) per inference / 80000000 Hz','{"arena_capacity": 196608, "upload_s": 0.0039017829999465903, "upload_rewinds": 0, "upload_resumed_from": 0, "chunk_bytes": 2044, "window": 4, "load_method": "wire upload + ALLOCATE, host wall clock", "clock_hz": 80000000, "cycle_source": "COST_MODEL", "batches": 1, "marker_pin": 5, "histogram": {"base": 219148, "width": 3424, "counts": [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 6, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]}, "link": {"frames_sent": 20, "frames_received": 21, "bad_frames": 0, "naks": 0, "retransmits": 0, "stale": 0, "upload_rewinds": 0}, "resets": 0, "op_profile": [{"op": "CONV_2D", "index": 0, "cycles": 27881.0}, {"op": "DEPTHWISE_CONV_2D", "index": 1, "cycles": 41682.0}, {"op": "CONV_2D", "index": 2, "cycles": 96070.0}, {"op": "MAX_POOL_2D", "index": 3, "cycles": 5543.0}, {"op": "RESHAPE", "index": 4, "cycles": 1607.0}, {"op": "FULLY_CONNECTED", "index": 5, "cycles": 42091.0}, {"op": "FULLY_CONNECTED", "index": 6, "cycles": 1997.0}, {"op": "SOFTMAX", "index": 7, "cycles": 1897.0}], "energy_method": "estimated: mean latency x the profile''s nominal active power"}');
INSERT INTO "measurements" VALUES(4,'20261202-151955-063a','sim-m4|digits_dense|6af46db934b5|r1','sim-m4',2,'6af46db934b5ca63a0d084168a41c2fef0afd72281024789af7e06adb1b533a8','digits_dense',1,'ok',NULL,'2026-12-02T15:19:56.677+00:00','2026-12-02T15:19:56.684+00:00',10,1,'[2738937.5, 2739337.5, 2731462.5, 2739025.0, 2751075.0, 2748987.5, 2737987.5, 2742925.0, 2736337.5, 2737575.0]',2733.65625,2738.98125,2750.135625,2.74036500000000069116e+03,5.86331521221377904851e+00,2.13961104167283448426e-03,5.13318000002982444129e+00,NULL,6384,24896,NULL,NULL,NULL,NULL,8.22109500000000110748e+01,1,'estimated','device cycle counter (COST_MODEL) per inference / 80000000 Hz','{"arena_capacity": 196608, "upload_s": 0.0011718189999783135, "upload_rewinds": 0, "upload_resumed_from": 24896, "chunk_bytes": 2044, "window": 4, "load_method": "wire upload + ALLOCATE, host wall clock", "clock_hz": 80000000, "cycle_source": "COST_MODEL", "batches": 1, "marker_pin": 5, "histogram": {"base": 219115, "width": 3423, "counts": [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]}, "link": {"frames_sent": 28, "frames_received": 29, "bad_frames": 0, "naks": 0, "retransmits": 0, "stale": 0, "upload_rewinds": 0}, "resets": 0, "op_profile": [{"op": "CONV_2D", "index": 0, "cycles": 27807.0}, {"op": "DEPTHWISE_CONV_2D", "index": 1, "cycles": 41573.0}, {"op": "CONV_2D", "index": 2, "cycles": 95818.0}, {"op": "MAX_POOL_2D", "index": 3, "cycles": 5528.0}, {"op": "RESHAPE", "index": 4, "cycles": 1603.0}, {"op": "FULLY_CONNECTED", "index": 5, "cycles": 41981.0}, {"op": "FULLY_CONNECTED", "index": 6, "cycles": 1992.0}, {"op": "SOFTMAX", "index": 7, "cycles": 1892.0}], "energy_method": "estimated: mean latency x the profile''s nominal active power"}');
CREATE TABLE model_variants (
	sha256 VARCHAR(64) NOT NULL, 
	name VARCHAR(255) NOT NULL, 
	base_sha256 VARCHAR(64), 
	engine VARCHAR(32), 
	method VARCHAR(32) NOT NULL, 
	scope VARCHAR(16), 
	target_sparsity FLOAT, 
	measured_sparsity FLOAT, 
	params BIGINT, 
	macs BIGINT, 
	size_bytes BIGINT, 
	gzip_bytes BIGINT, 
	arena_bytes BIGINT, 
	host_accuracy FLOAT, 
	provenance JSON NOT NULL, 
	PRIMARY KEY (sha256)
);
INSERT INTO "model_variants" VALUES('6af46db934b5ca63a0d084168a41c2fef0afd72281024789af7e06adb1b533a8','digits_dense',NULL,NULL,'original',NULL,NULL,NULL,NULL,NULL,24896,NULL,NULL,NULL,'{"name": "digits_dense", "sha256": "6af46db934b5ca63a0d084168a41c2fef0afd72281024789af7e06adb1b533a8", "method": "original", "engine": null, "scope": null, "base_sha256": null, "target_sparsity": null, "measured_sparsity": null, "layer_sparsity": {}, "params": null, "macs": null, "size_bytes": 24896, "gzip_bytes": null, "arena_bytes": null, "accuracy": null, "accuracy_method": null, "not_pruned": [], "command": null}');
CREATE TABLE runs (
	id VARCHAR(64) NOT NULL, 
	created_at VARCHAR(32) NOT NULL, 
	finished_at VARCHAR(32), 
	status VARCHAR(16) NOT NULL, 
	bench_version VARCHAR(32) NOT NULL, 
	git_commit VARCHAR(64), 
	host VARCHAR(255), 
	command TEXT, 
	config JSON NOT NULL, 
	n_cells INTEGER NOT NULL, 
	PRIMARY KEY (id)
);
INSERT INTO "runs" VALUES('20261202-151955-063a','2026-12-02T15:19:55.590+00:00','2026-12-02T15:19:56.998+00:00','complete','0.1.0','23f1fa36d8c0af1ef058d682bcb5bec5203bead6','vm','bench sweep','{"store": {"url": "sqlite:///bench.db"}, "devices": [{"name": "sim-m4", "kind": "sim", "settings": {}}, {"name": "board-a", "kind": "fake", "settings": {"latency_us": 250.0}}], "meters": [], "energy": {"windows": 5, "min_window_s": 1.0, "idle_s": 0.2}, "sweep": {"models": ["/work/main/harness/models/data/digits/digits_dense.tflite"], "methods": [], "sparsities": [], "repeats": 2, "warmup": 1, "iterations": 10, "min_seconds": 0.0, "accuracy_samples": 8}}',4);
CREATE INDEX ix_device_snapshots_run_id ON device_snapshots (run_id);
CREATE INDEX ix_measurements_run_id ON measurements (run_id);
COMMIT;
