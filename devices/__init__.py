"""Device drivers: one module per kind of device, all behind the `Device` protocol in `devices.base`."""
