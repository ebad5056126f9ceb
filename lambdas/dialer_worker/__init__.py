"""Target of the pipe: paces dials fleet-wide in Redis, claims each call once, POSTs to the worker."""
