"""The data plane and the HTTP server: REST and Open Inference Protocol routes over one data plane."""
