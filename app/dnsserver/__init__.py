"""The built-in authoritative DNS server: zone table (a provider), answer plans, UDP/TCP server, geo."""
