"""What the test suite and the benchmarks share: the real services on loopback (throw-away
databases), an SMTP sink, a seeded marketplace and bulk data. The program never imports it."""
