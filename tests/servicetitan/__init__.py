"""ServiceTitan: the simulator (auth host, API, webhook sender) and the client."""
