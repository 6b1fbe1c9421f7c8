"""The serving benchmark's parts: the model, the four servers, the load generator and the RSS sampler."""
